package webhooks

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// oldWrap is the hand-written envelope writer wrap used before
// internal/envelope owned it, kept as the reference its output must match
// byte for byte.
func oldWrap(provider, account, typ string, ve vendorEvent) []byte {
	key := strings.ToLower(strings.TrimSpace(ve.recipient))
	id := provider + ":" + ve.id
	if ve.id == "" {
		id = fallbackID(provider, ve.data)
	}
	data := bytes.TrimSpace(ve.data)
	str := func(buf []byte, s string) []byte { b, _ := json.Marshal(s); return append(buf, b...) }
	buf := append([]byte(nil), `{"id":`...)
	buf = str(buf, id)
	buf = append(buf, `,"source":`...)
	buf = str(buf, provider)
	buf = append(buf, `,"type":`...)
	buf = str(buf, typ)
	buf = append(buf, `,"account_id":`...)
	buf = str(buf, account)
	buf = append(buf, `,"occurred_at":`...)
	buf = str(buf, ve.time.UTC().Format(time.RFC3339Nano))
	buf = append(buf, `,"key":`...)
	buf = str(buf, key)
	buf = append(buf, `,"data":`...)
	buf = append(buf, data...)
	return append(buf, '}')
}

func TestWrapMatchesOldWriter(t *testing.T) {
	at := time.Date(2026, 11, 19, 11, 18, 52, 123456000, time.FixedZone("x", 3600))
	cases := []struct {
		name, provider, account, typ string
		ve                           vendorEvent
	}{
		{"plain", "sendgrid", "acct_1", "delivered", vendorEvent{id: "sg1", recipient: " A@B.com ", time: at, data: []byte(` {"email":"a@b.com"} `)}},
		{"no id", "ses", "acct_2", "bounce", vendorEvent{recipient: "x@y.z", time: at, data: []byte(`{"a":1}`)}},
		{"html and quotes", "mailgun", `a<b>&"c"`, "open", vendorEvent{id: `<script>"\`, recipient: "q&a@x.y", time: at, data: []byte(`{"h":"<b>"}`)}},
		{"invalid utf8 and controls", "sendgrid", "acct\xff", "t\x01\n", vendorEvent{id: "\xc3\x28", recipient: "é@ü.de", time: at, data: []byte(`[]`)}},
		{"unicode line separators", "ses", "\u2028", "\u2029", vendorEvent{id: "id", recipient: "", time: time.Time{}, data: []byte(`null`)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wrap(c.provider, c.account, c.typ, c.ve).Payload
			want := oldWrap(c.provider, c.account, c.typ, c.ve)
			if !bytes.Equal(got, want) {
				t.Fatalf("envelope differs:\n got %s\nwant %s", got, want)
			}
		})
	}
}
