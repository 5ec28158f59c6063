package generate

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// profile is the stable identity of an entity: the same entity number
// always yields the same person, so events about it agree.
type profile struct {
	first, last, company, domain, title, city string
	account                                   int
	freeMail                                  bool
}

var (
	firstNames = [...]string{"Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia", "Tim", "Katherine", "Donald", "Hedy", "Edsger", "Sophie", "Guido", "Anita", "Bjarne", "Joan"}
	lastNames  = [...]string{"Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Ritchie", "Allen", "Thompson", "Perlman", "Berners-Lee", "Johnson", "Knuth", "Lamarr", "Dijkstra", "Wilson", "van Rossum", "Borg", "Stroustrup", "Clarke"}
	companies  = [...]string{"Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises", "Hooli", "Pied Piper", "Vandelay Imports", "Soylent Foods", "Tyrell Systems", "Cyberdyne", "Wonka Confections", "Oscorp", "Massive Dynamic", "Aperture Labs"}
	domains    = [...]string{"acme-corp.com", "globex.io", "initech.com", "umbrella-health.org", "stark.industries", "wayne-ent.com", "hooli.xyz", "piedpiper.net", "vandelay.com", "soylent.co", "tyrell.ai", "cyberdyne.systems", "wonka.com", "oscorp.com", "massivedynamic.com", "aperture.science"}
	freeMail   = [...]string{"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me"}
	titles     = [...]string{"VP Sales", "Head of Talent", "Recruiter", "Account Executive", "CTO", "Software Engineer", "Marketing Manager", "Customer Success Lead", "Founder", "Director of Operations"}
	cities     = [...]string{"Berlin", "Lisbon", "Austin", "Toronto", "Singapore", "Nairobi", "Melbourne", "Dublin", "Bangalore", "Sao Paulo"}
	stages     = [...]string{"Application Review", "Phone Screen", "Technical Interview", "Onsite", "Offer", "Hired"}
	tags       = [...]string{"priority", "referral", "enterprise", "smb", "renewal", "inbound", "outbound", "event-lead", "partner", "churn-risk"}
)

func person(entity, accounts int) profile {
	c := entity % len(companies)
	p := profile{
		first:   firstNames[entity%len(firstNames)],
		last:    lastNames[(entity/len(firstNames))%len(lastNames)],
		company: companies[c],
		domain:  domains[c],
		title:   titles[entity%len(titles)],
		city:    cities[entity%len(cities)],
		account: entity % accounts,
	}
	if entity%5 == 0 {
		p.freeMail = true
		p.domain = freeMail[entity%len(freeMail)]
	}
	return p
}

// appendEmail writes a deterministic address; some carry +tags and upper
// case, as real CRM data does, for enrich to normalize.
func appendEmail(buf []byte, p profile, entity int) []byte {
	if entity%7 == 0 {
		buf = append(buf, p.first...)
	} else {
		buf = appendLower(buf, p.first)
	}
	buf = append(buf, '.')
	buf = appendLower(buf, p.last)
	buf = strconv.AppendInt(buf, int64(entity), 10)
	if entity%11 == 0 {
		buf = append(buf, "+crm"...)
	}
	buf = append(buf, '@')
	return append(buf, p.domain...)
}

func appendLower(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ':
			c = '-'
		}
		buf = append(buf, c)
	}
	return buf
}

func appendSFID(buf []byte, prefix string, n int) []byte {
	buf = append(buf, prefix...)
	s := strconv.FormatInt(int64(n)+1e11, 36)
	for i := len(s); i < 15; i++ {
		buf = append(buf, '0')
	}
	return append(buf, s...)
}

const sfTime = "2006-01-02T15:04:05.000-0700"

func appendSalesforce(buf []byte, p profile, entity int, now time.Time) []byte {
	buf = append(buf, `{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/`...)
	buf = appendSFID(buf, "003", entity)
	buf = append(buf, `"},"Id":"`...)
	buf = appendSFID(buf, "003", entity)
	buf = append(buf, `","FirstName":"`...)
	buf = append(buf, p.first...)
	buf = append(buf, `","LastName":"`...)
	buf = append(buf, p.last...)
	buf = append(buf, `","Email":"`...)
	buf = appendEmail(buf, p, entity)
	buf = append(buf, `","Title":"`...)
	buf = append(buf, p.title...)
	buf = append(buf, `","Phone":"+1 415 555 `...)
	buf = strconv.AppendInt(buf, int64(1000+entity%9000), 10)
	buf = append(buf, `","AccountId":"`...)
	buf = appendSFID(buf, "001", p.account)
	buf = append(buf, `","OwnerId":"`...)
	buf = appendSFID(buf, "005", entity%40)
	buf = append(buf, `","LeadSource":"Web","MailingCity":"`...)
	buf = append(buf, p.city...)
	buf = append(buf, `","CreatedDate":"2024-03-01T09:30:00.000+0000","LastModifiedDate":"`...)
	buf = now.AppendFormat(buf, sfTime)
	buf = append(buf, `","SystemModstamp":"`...)
	buf = now.AppendFormat(buf, sfTime)
	return append(buf, `","IsDeleted":false}`...)
}

func appendHubSpot(buf []byte, p profile, entity int, now time.Time) []byte {
	buf = append(buf, `{"id":"`...)
	buf = strconv.AppendInt(buf, int64(50000+entity), 10)
	buf = append(buf, `","properties":{"email":"`...)
	buf = appendEmail(buf, p, entity)
	buf = append(buf, `","firstname":"`...)
	buf = append(buf, p.first...)
	buf = append(buf, `","lastname":"`...)
	buf = append(buf, p.last...)
	buf = append(buf, `","company":"`...)
	buf = append(buf, p.company...)
	buf = append(buf, `","jobtitle":"`...)
	buf = append(buf, p.title...)
	buf = append(buf, `","lifecyclestage":"lead","hs_object_id":"`...)
	buf = strconv.AppendInt(buf, int64(50000+entity), 10)
	buf = append(buf, `","createdate":"2024-03-01T09:30:00.000Z","lastmodifieddate":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `"},"createdAt":"2024-03-01T09:30:00.000Z","updatedAt":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, `","archived":false}`...)
}

func appendGreenhouse(buf []byte, p profile, entity int, now time.Time, rng *rand.Rand) []byte {
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendInt(buf, int64(4000000+entity), 10)
	buf = append(buf, `,"first_name":"`...)
	buf = append(buf, p.first...)
	buf = append(buf, `","last_name":"`...)
	buf = append(buf, p.last...)
	buf = append(buf, `","company":"`...)
	buf = append(buf, p.company...)
	buf = append(buf, `","title":"`...)
	buf = append(buf, p.title...)
	buf = append(buf, `","created_at":"2024-03-01T09:30:00.000Z","updated_at":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","email_addresses":[{"value":"`...)
	buf = appendEmail(buf, p, entity)
	buf = append(buf, `","type":"personal"}],"applications":[{"id":`...)
	buf = strconv.AppendInt(buf, int64(9000000+entity), 10)
	buf = append(buf, `,"status":"active","current_stage":{"id":`...)
	s := rng.IntN(len(stages))
	buf = strconv.AppendInt(buf, int64(100+s), 10)
	buf = append(buf, `,"name":"`...)
	buf = append(buf, stages[s]...)
	buf = append(buf, `"}}],"tags":["`...)
	buf = append(buf, tags[entity%len(tags)]...)
	return append(buf, `"]}`...)
}

func appendLever(buf []byte, p profile, entity int, now time.Time, rng *rand.Rand) []byte {
	buf = append(buf, `{"id":"`...)
	buf = appendUUID(buf, uint64(entity))
	buf = append(buf, `","name":"`...)
	buf = append(buf, p.first...)
	buf = append(buf, ' ')
	buf = append(buf, p.last...)
	buf = append(buf, `","headline":"`...)
	buf = append(buf, p.company...)
	buf = append(buf, `","emails":["`...)
	buf = appendEmail(buf, p, entity)
	buf = append(buf, `"],"stage":"`...)
	buf = appendUUID(buf, uint64(rng.IntN(len(stages))))
	buf = append(buf, `","origin":"sourced","location":"`...)
	buf = append(buf, p.city...)
	buf = append(buf, `","createdAt":1709285400000,"updatedAt":`...)
	buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	buf = append(buf, `,"tags":["`...)
	buf = append(buf, tags[entity%len(tags)]...)
	return append(buf, `"],"archived":null}`...)
}

func appendUUID(buf []byte, n uint64) []byte {
	const hex = "0123456789abcdef"
	x := n*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			buf = append(buf, '-')
		}
		buf = append(buf, hex[x&15])
		x = x>>4 | x<<60
		if i%16 == 15 {
			x = x*0xbf58476d1ce4e5b9 + n
		}
	}
	return buf
}

func appendSendGrid(buf []byte, p profile, n uint64, now time.Time, kind int) []byte {
	buf = append(buf, `{"email":"`...)
	buf = appendEmail(buf, p, int(n%100000))
	buf = append(buf, `","timestamp":`...)
	buf = strconv.AppendInt(buf, now.Unix(), 10)
	buf = append(buf, `,"event":"`...)
	buf = append(buf, sendgridEvents[kind]...)
	buf = append(buf, `","sg_event_id":"`...)
	buf = appendUUID(buf, n)
	buf = append(buf, `","sg_message_id":"`...)
	buf = appendUUID(buf, n/3)
	buf = append(buf, `.filter0001","smtp-id":"<`...)
	buf = appendUUID(buf, n/3)
	buf = append(buf, `@sluice.example>","category":["sequence","step-2"],"ip":"198.51.100.`...)
	buf = strconv.AppendInt(buf, int64(n%250), 10)
	return append(buf, `","useragent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)"}`...)
}

func appendMailgun(buf []byte, p profile, n uint64, now time.Time, kind int) []byte {
	buf = append(buf, `{"signature":{"timestamp":"`...)
	buf = strconv.AppendInt(buf, now.Unix(), 10)
	buf = append(buf, `","token":"`...)
	buf = appendUUID(buf, n)
	buf = append(buf, `","signature":"`...)
	buf = appendUUID(buf, n^0xabcdef)
	buf = append(buf, `"},"event-data":{"event":"`...)
	buf = append(buf, mailgunEvents[kind]...)
	buf = append(buf, `","timestamp":`...)
	buf = strconv.AppendFloat(buf, float64(now.UnixMicro())/1e6, 'f', 6, 64)
	buf = append(buf, `,"id":"`...)
	buf = appendUUID(buf, n)
	buf = append(buf, `","recipient":"`...)
	buf = appendEmail(buf, p, int(n%100000))
	buf = append(buf, `","message":{"headers":{"message-id":"`...)
	buf = appendUUID(buf, n/3)
	buf = append(buf, `@mg.sluice.example","subject":"Following up on our conversation","from":"sales@sluice.example"}},"delivery-status":{"code":250,"message":"OK"}}}`...)
	return buf
}

func appendSES(buf []byte, p profile, n uint64, now time.Time, kind int, rng *rand.Rand) []byte {
	buf = append(buf, `{"eventType":"`...)
	buf = append(buf, sesEvents[kind]...)
	buf = append(buf, `","mail":{"timestamp":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","messageId":"`...)
	buf = appendUUID(buf, n/3)
	buf = append(buf, `","source":"outreach@sluice.example","destination":["`...)
	buf = appendEmail(buf, p, int(n%100000))
	buf = append(buf, `"]},"delivery":{"timestamp":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","processingTimeMillis":`...)
	buf = strconv.AppendInt(buf, int64(200+rng.IntN(2000)), 10)
	return append(buf, `,"smtpResponse":"250 2.0.0 OK","reportingMTA":"a8-30.smtp-out.amazonses.com"}}`...)
}

const loremText = "Spoke with the team about renewal timing and the security review. They want SSO before expanding seats; follow up after the procurement call. Candidate has strong distributed systems background, prefers remote, notice period four weeks. Sequence step two bounced once, retried the next morning and delivered. Notes from the discovery call: current stack is a homegrown sync job that drops events under load, lag spikes every Monday. Asked for references from two customers of similar size. "

// appendText appends n bytes of note text starting at offset off.
func appendText(buf []byte, n, off int) []byte {
	for n > 0 {
		chunk := loremText[off:]
		if len(chunk) > n {
			chunk = chunk[:n]
		}
		buf = append(buf, chunk...)
		n -= len(chunk)
		off = 0
	}
	return buf
}
