package pipeline

import (
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
)

// RedactURL hides the password (or lone token) of a URL's userinfo, with
// or without a scheme: "https://elastic:pw@h" → "https://elastic:xxxxx@h",
// "user:pw@b:9092" → "user:xxxxx@b:9092", "redis://:pw@h" →
// "redis://:xxxxx@h". Anything without userinfo is returned as it is. Use it
// on every URL or address a message or log line prints.
func RedactURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	end := len(s)
	if i := strings.IndexAny(s[start:], "/?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndexByte(s[start:end], '@')
	if at < 0 {
		return s
	}
	at += start
	user, _, hasPw := strings.Cut(s[start:at], ":")
	if !hasPw {
		return s[:start] + "xxxxx" + s[at:]
	}
	return s[:start] + user + ":xxxxx" + s[at:]
}

// RedactURLs is RedactURL of each, for logging a list.
func RedactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = RedactURL(u)
	}
	return out
}

// Secret is a value a config file took from the environment.
type Secret struct {
	Name  string // the variable, "ES_PASSWORD"
	Value string
}

// minSecretLen is the shortest substituted value Redact replaces in free
// text: shorter ones ("1", "true", a port) would garble unrelated words,
// and are no secrets.
const minSecretLen = 6

// Redactor replaces the values of secrets in text with "${NAME}".
type Redactor struct {
	pairs []string // old, new for strings.Replacer, longest first
	r     *strings.Replacer
}

// NewRedactor returns a Redactor for the values of secrets at least six
// bytes long, as written and as %q or JSON escape them.
func NewRedactor(secrets []Secret) *Redactor {
	type pair struct{ old, new string }
	var ps []pair
	for _, s := range secrets {
		if len(s.Value) < minSecretLen {
			continue
		}
		ref := "${" + s.Name + "}"
		q := strconv.Quote(s.Value)
		j, _ := json.Marshal(s.Value)
		for _, form := range []string{s.Value, q[1 : len(q)-1], string(j[1 : len(j)-1])} {
			ps = append(ps, pair{form, ref})
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].old) > len(ps[j].old) })
	rd := &Redactor{}
	for _, p := range ps {
		rd.pairs = append(rd.pairs, p.old, p.new)
	}
	rd.r = strings.NewReplacer(rd.pairs...)
	return rd
}

// Redact returns s with every secret value replaced by its ${NAME}.
func (rd *Redactor) Redact(s string) string {
	if rd == nil || len(rd.pairs) == 0 {
		return s
	}
	return rd.r.Replace(s)
}

// Writer returns w with every Write redacted: for a logger's output, which
// writes one record per call.
func (rd *Redactor) Writer(w io.Writer) io.Writer {
	if rd == nil || len(rd.pairs) == 0 {
		return w
	}
	return redactWriter{w: w, rd: rd}
}

type redactWriter struct {
	w  io.Writer
	rd *Redactor
}

func (r redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.rd.Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
