package enrich

// freeMailDomains are consumer mailbox providers: an address at one of
// these says nothing about the person's employer, so enrich classifies it
// as free_mail and does not look an account up by its domain.
//
// Source: hand-curated for sluice from the sign-up domains the largest
// consumer mail providers publish (Google, Microsoft, Yahoo, Apple, Proton,
// AOL, GMX/web.de, Yandex, Mail.ru, Zoho, Tutanota, Fastmail and the large
// national ISPs), about 60 domains that cover the vast majority of
// consumer addresses seen in B2B CRM data. It is deliberately short rather
// than exhaustive (public lists of disposable domains run to thousands and
// change weekly); extend it with the free_mail_domains option.
var freeMailDomains = []string{
	// Google
	"gmail.com", "googlemail.com",
	// Microsoft
	"outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "live.com", "live.co.uk", "live.fr", "msn.com", "passport.com",
	// Yahoo / AOL (Yahoo Inc.)
	"yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.co.jp", "yahoo.com.br", "yahoo.co.in", "ymail.com", "rocketmail.com", "aol.com", "aim.com",
	// Apple
	"icloud.com", "me.com", "mac.com",
	// Proton, Tutanota, Fastmail, Zoho
	"proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tuta.io", "fastmail.com", "fastmail.fm", "zoho.com", "zohomail.com",
	// GMX / United Internet, T-Online
	"gmx.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de",
	// Yandex, Mail.ru
	"yandex.com", "yandex.ru", "ya.ru", "mail.ru", "bk.ru", "inbox.ru", "list.ru",
	// Others with large consumer bases
	"mail.com", "qq.com", "163.com", "126.com", "naver.com", "hey.com", "orange.fr", "wanadoo.fr", "free.fr", "libero.it", "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "btinternet.com",
}
