package generate

import (
	"bytes"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

var epoch = time.Date(2024, 3, 1, 9, 30, 0, 123456789, time.UTC)

// tickingClock returns a clock that starts at epoch and moves 1ms per call,
// so each event's time is distinct and predictable.
func tickingClock() func() time.Time {
	t := epoch
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

// generated is one event copied out of the generator's buffers.
type generated struct {
	id      string
	key     string
	payload []byte
	time    time.Time
}

func generate(t *testing.T, w Workload, n int) []generated {
	t.Helper()
	g := NewGenerator(w, tickingClock())
	out := make([]generated, n)
	var buf []byte
	for i := range out {
		var ev pipeline.Event
		// Reuse the buffer as Source.Read does across a batch; the
		// payloads must stay intact while later events are appended.
		if i%64 == 0 {
			buf = make([]byte, 0, 16<<10)
		}
		buf = g.Next(&ev, buf)
		if ev.Body != nil || ev.Meta != nil {
			t.Fatalf("event %d: Next left Body or Meta set", i)
		}
		out[i] = generated{id: ev.ID, key: string(ev.Key), payload: ev.Payload, time: ev.Time}
	}
	// Copy only after generating all, so a later append writing through an
	// earlier payload would show up as a mismatch below.
	for i := range out {
		out[i].payload = bytes.Clone(out[i].payload)
	}
	if uint64(n) != g.Emitted() {
		t.Fatalf("Emitted() = %d, want %d", g.Emitted(), n)
	}
	return out
}

func TestGeneratorDeterministic(t *testing.T) {
	w := Workload{Duplicates: 0.05, Poison: 0.01, Seed: 42}
	a := generate(t, w, 3000)
	b := generate(t, w, 3000)
	for i := range a {
		if a[i].id != b[i].id || a[i].key != b[i].key || !bytes.Equal(a[i].payload, b[i].payload) || !a[i].time.Equal(b[i].time) {
			t.Fatalf("event %d differs between two generators with the same seed:\n%s %s %s\n%s %s %s",
				i, a[i].id, a[i].key, a[i].payload, b[i].id, b[i].key, b[i].payload)
		}
	}
	// A different seed must give a different sequence (it would be a
	// useless seed otherwise).
	w.Seed = 43
	c := generate(t, w, 50)
	same := 0
	for i := range c {
		if bytes.Equal(a[i].payload, c[i].payload) {
			same++
		}
	}
	if same == len(c) {
		t.Fatal("seeds 42 and 43 produced identical payloads")
	}
}

func TestGeneratorEnvelope(t *testing.T) {
	familyOf := map[string]string{
		"salesforce": "crm", "hubspot": "crm",
		"greenhouse": "ats", "lever": "ats",
		"sendgrid": "email", "mailgun": "email", "ses": "email",
	}
	typesOf := map[string][]string{"crm": crmTypes[:], "ats": atsTypes[:], "email": emailKinds[:]}
	keyRE := regexp.MustCompile(`^([a-z]+):([0-9]+)$`)
	const accounts = 37
	for _, seed := range []uint64{1, 7, 1234567} {
		w := Workload{Seed: seed, Entities: 500, Accounts: accounts}
		evs := generate(t, w, 4000)
		for i, ev := range evs {
			p := ev.payload
			if !gjson.ValidBytes(p) {
				t.Fatalf("seed %d event %d: invalid JSON with poison 0: %s", seed, i, p)
			}
			root := gjson.ParseBytes(p)
			if !root.IsObject() {
				t.Fatalf("seed %d event %d: payload is not an object", seed, i)
			}
			for _, f := range []string{"id", "source", "type", "account_id", "occurred_at", "key", "data"} {
				if !root.Get(f).Exists() {
					t.Fatalf("seed %d event %d: envelope field %q missing: %s", seed, i, f, p)
				}
			}
			if got := root.Get("id").String(); got != ev.id {
				t.Errorf("seed %d event %d: payload id %q != Event.ID %q", seed, i, got, ev.id)
			}
			if got := root.Get("key").String(); got != ev.key {
				t.Errorf("seed %d event %d: payload key %q != Event.Key %q", seed, i, got, ev.key)
			}
			m := keyRE.FindStringSubmatch(ev.key)
			if m == nil {
				t.Fatalf("seed %d event %d: key %q is not vendor:entity", seed, i, ev.key)
			}
			source := root.Get("source").String()
			if m[1] != source {
				t.Errorf("seed %d event %d: key vendor %q != source %q", seed, i, m[1], source)
			}
			family, ok := familyOf[source]
			if !ok {
				t.Fatalf("seed %d event %d: unknown source %q", seed, i, source)
			}
			if typ := root.Get("type").String(); !slices.Contains(typesOf[family], typ) {
				t.Errorf("seed %d event %d: type %q is not a %s type", seed, i, typ, family)
			}
			entity, _ := strconv.Atoi(m[2])
			if entity < 0 || entity >= w.Entities {
				t.Errorf("seed %d event %d: entity %d out of range", seed, i, entity)
			}
			if got, want := root.Get("account_id").String(), "acct_"+strconv.Itoa(entity%accounts); got != want {
				t.Errorf("seed %d event %d: account_id %q, want %q", seed, i, got, want)
			}
			at, err := time.Parse(time.RFC3339Nano, root.Get("occurred_at").String())
			if err != nil || !at.Equal(ev.time) {
				t.Errorf("seed %d event %d: occurred_at %q (%v) != Event.Time %v", seed, i, root.Get("occurred_at").String(), err, ev.time)
			}
			if !root.Get("data").IsObject() {
				t.Errorf("seed %d event %d: data is not an object", seed, i)
			}
			if !strings.HasPrefix(ev.id, "evt_") {
				t.Errorf("seed %d event %d: id %q lacks the evt_ prefix", seed, i, ev.id)
			}
		}
	}
}

func TestGeneratorIDsUniqueWithoutDuplicates(t *testing.T) {
	evs := generate(t, Workload{Seed: 5}, 20000)
	seen := make(map[string]bool, len(evs))
	for i, ev := range evs {
		if seen[ev.id] {
			t.Fatalf("event %d: id %q repeats with duplicates 0", i, ev.id)
		}
		seen[ev.id] = true
	}
}

func TestGeneratorPayloadSizes(t *testing.T) {
	// A vendor record is written whole, then padded with notes up to the
	// picked size. Padding needs at least len(`,"notes":""`) bytes, so a
	// record that falls up to 11 bytes short of its target stays short:
	// measured, sizes dip at most that far below min_size. Above max_size
	// there is no overshoot as long as max_size exceeds the largest bare
	// record (about 730 bytes).
	const underMin = len(`,"notes":""}`) - 1
	tests := []struct{ min, max int }{
		{512, 5 * 1024},
		{1024, 1024},
		{700, 800},
		{2048, 4096},
		{800, 64 * 1024},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.min)+"-"+strconv.Itoa(tt.max), func(t *testing.T) {
			evs := generate(t, Workload{Seed: 9, MinSize: tt.min, MaxSize: tt.max}, 5000)
			lo, hi := math.MaxInt, 0
			for i, ev := range evs {
				n := len(ev.payload)
				lo, hi = min(lo, n), max(hi, n)
				if n < tt.min-underMin || n > tt.max {
					t.Errorf("event %d (%s): %d bytes, want within [%d-%d, %d]", i, ev.key, n, tt.min, underMin, tt.max)
				}
				if !gjson.ValidBytes(ev.payload) {
					t.Fatalf("event %d: padding broke the JSON: %s", i, ev.payload)
				}
			}
			// The sizes must actually spread over the range, not sit at one end.
			if tt.max-tt.min >= 1024 && hi-lo < (tt.max-tt.min)/2 {
				t.Errorf("sizes only span [%d, %d] of [%d, %d]", lo, hi, tt.min, tt.max)
			}
		})
	}
}

func TestGeneratorSmallMaxSizeKeepsRecordsWhole(t *testing.T) {
	// max_size below a vendor record's natural size cannot be honoured
	// without cutting the record; the generator must keep it valid JSON.
	for i, ev := range generate(t, Workload{Seed: 2, MinSize: 256, MaxSize: 256}, 2000) {
		if !gjson.ValidBytes(ev.payload) {
			t.Fatalf("event %d: invalid JSON: %s", i, ev.payload)
		}
		if gjson.GetBytes(ev.payload, "notes").Exists() {
			t.Fatalf("event %d: padded although already above max_size: %d bytes", i, len(ev.payload))
		}
	}
}

func share(n, total int) float64 { return float64(n) / float64(total) }

func TestGeneratorMixShares(t *testing.T) {
	family := map[string]int{"salesforce": 0, "hubspot": 0, "greenhouse": 1, "lever": 1, "sendgrid": 2, "mailgun": 2, "ses": 2}
	tests := []struct {
		name string
		mix  Mix
		want [3]float64
	}{
		{"default", Mix{}, [3]float64{0.5, 0.2, 0.3}},
		{"explicit", Mix{CRM: 0.5, ATS: 0.2, Email: 0.3}, [3]float64{0.5, 0.2, 0.3}},
		{"not summing to one", Mix{CRM: 2, ATS: 1, Email: 1}, [3]float64{0.5, 0.25, 0.25}},
		{"ats only", Mix{ATS: 3}, [3]float64{0, 1, 0}},
		{"no ats", Mix{CRM: 1, Email: 1}, [3]float64{0.5, 0, 0.5}},
	}
	const n = 20000
	// 20,000 draws: the standard deviation of a share is at most
	// sqrt(0.25/20000) = 0.0035; 0.02 is more than five of them.
	const tol = 0.02
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var counts [3]int
			vendors := map[string]int{}
			for _, ev := range generate(t, Workload{Mix: tt.mix, Seed: 11}, n) {
				src := gjson.GetBytes(ev.payload, "source").String()
				f, ok := family[src]
				if !ok {
					t.Fatalf("unknown source %q", src)
				}
				counts[f]++
				vendors[src]++
			}
			for f := range counts {
				got := share(counts[f], n)
				if tt.want[f] == 0 && counts[f] != 0 || math.Abs(got-tt.want[f]) > tol {
					t.Errorf("family %d share %.4f, want %.2f ± %.2f", f, got, tt.want[f], tol)
				}
			}
			// Every vendor of a family that has a share shows up.
			for src, f := range family {
				if tt.want[f] > 0 && vendors[src] == 0 {
					t.Errorf("vendor %s never generated", src)
				}
			}
		})
	}
}

func TestGeneratorDuplicatesAndPoison(t *testing.T) {
	tests := []struct {
		dup, poison float64
		seed        uint64
	}{
		{0.02, 0.001, 1},
		{0.10, 0.05, 2},
		{0.30, 0.20, 3},
		{0, 0.1, 4},
		{0.1, 0, 5},
	}
	const n = 20000
	for _, tt := range tests {
		t.Run(strconv.FormatFloat(tt.dup, 'f', -1, 64)+"/"+strconv.FormatFloat(tt.poison, 'f', -1, 64), func(t *testing.T) {
			evs := generate(t, Workload{Duplicates: tt.dup, Poison: tt.poison, Seed: tt.seed}, n)
			type first struct {
				payload []byte
				key     string
				time    time.Time
			}
			seen := map[string]first{}
			dups, fresh, poison := 0, 0, 0
			for i, ev := range evs {
				if f, ok := seen[ev.id]; ok {
					dups++
					if !bytes.Equal(f.payload, ev.payload) || f.key != ev.key || !f.time.Equal(ev.time) {
						t.Fatalf("event %d repeats id %s with a different payload, key or time", i, ev.id)
					}
					continue
				}
				fresh++
				valid := gjson.ValidBytes(ev.payload)
				if !valid {
					poison++
				}
				seen[ev.id] = first{ev.payload, ev.key, ev.time}
			}
			// Binomial standard deviations at n=20000 stay below 0.0033;
			// allow five of them plus a little for the poison share, which
			// is measured over the fresh events only.
			gotDup := share(dups, n)
			if math.Abs(gotDup-tt.dup) > 0.017 || tt.dup == 0 && dups != 0 {
				t.Errorf("duplicate share %.4f, want %.3f", gotDup, tt.dup)
			}
			gotPoison := share(poison, fresh)
			if math.Abs(gotPoison-tt.poison) > 0.018 || tt.poison == 0 && poison != 0 {
				t.Errorf("poison share %.4f of fresh events, want %.3f", gotPoison, tt.poison)
			}
			if tt.poison > 0 && poison == 0 {
				t.Error("no poison event generated")
			}
		})
	}
}

func TestGeneratorPoisonIsTruncatedRecord(t *testing.T) {
	// Poison must be malformed JSON that still looks like the start of a
	// real event, so the dead-letter sink shows something recognisable.
	evs := generate(t, Workload{Poison: 0.5, Seed: 8}, 500)
	poison := 0
	for i, ev := range evs {
		if gjson.ValidBytes(ev.payload) {
			continue
		}
		poison++
		if !bytes.HasPrefix(ev.payload, []byte(`{"id":"`+ev.id+`"`)) {
			t.Errorf("poison event %d does not start with its envelope: %.60s", i, ev.payload)
		}
		if ev.key == "" {
			t.Errorf("poison event %d lost its key", i)
		}
	}
	if poison == 0 {
		t.Fatal("no poison events at poison 0.5")
	}
}

func TestVendorPayloads(t *testing.T) {
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	sfIDRE := regexp.MustCompile(`^003[0-9a-z]{15}$`)
	emailRE := regexp.MustCompile(`^[^@\s"]+@[a-z0-9.-]+\.[a-z]+$`)
	isEmail := func(v gjson.Result) bool { return v.Type == gjson.String && emailRE.MatchString(v.Str) }
	in := func(v gjson.Result, vals ...string) bool {
		return v.Type == gjson.String && slices.Contains(vals, v.Str)
	}

	checks := map[string]func(t *testing.T, d gjson.Result, at time.Time){
		"salesforce": func(t *testing.T, d gjson.Result, at time.Time) {
			if d.Get("attributes.type").String() != "Contact" {
				t.Errorf("attributes.type = %q", d.Get("attributes.type").String())
			}
			id := d.Get("Id").String()
			if !sfIDRE.MatchString(id) {
				t.Errorf("Id %q is not an 18-char Contact id", id)
			}
			if !strings.HasSuffix(d.Get("attributes.url").String(), "/sobjects/Contact/"+id) {
				t.Errorf("attributes.url %q does not end with the Id", d.Get("attributes.url").String())
			}
			ts, err := time.Parse(sfTime, d.Get("SystemModstamp").String())
			if err != nil || !ts.Equal(at.Truncate(time.Millisecond)) {
				t.Errorf("SystemModstamp %q (%v), want %v", d.Get("SystemModstamp").String(), err, at)
			}
			if !isEmail(d.Get("Email")) || d.Get("IsDeleted").Type != gjson.False {
				t.Errorf("Email %q or IsDeleted %s wrong", d.Get("Email").String(), d.Get("IsDeleted").Raw)
			}
		},
		"hubspot": func(t *testing.T, d gjson.Result, at time.Time) {
			if d.Get("properties.hs_object_id").String() != d.Get("id").String() || d.Get("id").String() == "" {
				t.Errorf("properties.hs_object_id %q != id %q", d.Get("properties.hs_object_id").String(), d.Get("id").String())
			}
			ts, err := time.Parse(time.RFC3339Nano, d.Get("updatedAt").String())
			if err != nil || !ts.Equal(at) {
				t.Errorf("updatedAt %q (%v), want %v", d.Get("updatedAt").String(), err, at)
			}
			if !isEmail(d.Get("properties.email")) || d.Get("archived").Type != gjson.False {
				t.Errorf("properties.email %q or archived wrong", d.Get("properties.email").String())
			}
		},
		"greenhouse": func(t *testing.T, d gjson.Result, at time.Time) {
			if d.Get("id").Type != gjson.Number {
				t.Errorf("id %s is not a number", d.Get("id").Raw)
			}
			if !isEmail(d.Get("email_addresses.0.value")) {
				t.Errorf("email_addresses[0].value = %q", d.Get("email_addresses.0.value").String())
			}
			if !in(d.Get("applications.0.current_stage.name"), stages[:]...) {
				t.Errorf("applications[0].current_stage.name = %q", d.Get("applications.0.current_stage.name").String())
			}
			ts, err := time.Parse(time.RFC3339Nano, d.Get("updated_at").String())
			if err != nil || !ts.Equal(at) {
				t.Errorf("updated_at %q (%v), want %v", d.Get("updated_at").String(), err, at)
			}
		},
		"lever": func(t *testing.T, d gjson.Result, at time.Time) {
			emails := d.Get("emails")
			if !emails.IsArray() || len(emails.Array()) == 0 || !isEmail(emails.Array()[0]) {
				t.Errorf("emails = %s", emails.Raw)
			}
			if !uuidRE.MatchString(d.Get("id").String()) {
				t.Errorf("id %q is not a UUID", d.Get("id").String())
			}
			if d.Get("updatedAt").Int() != at.UnixMilli() {
				t.Errorf("updatedAt %s, want %d (ms)", d.Get("updatedAt").Raw, at.UnixMilli())
			}
		},
		"sendgrid": func(t *testing.T, d gjson.Result, at time.Time) {
			if !uuidRE.MatchString(d.Get("sg_event_id").String()) {
				t.Errorf("sg_event_id %q", d.Get("sg_event_id").String())
			}
			if !in(d.Get("event"), "processed", "dropped", "delivered", "deferred", "bounce", "open", "click", "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe") {
				t.Errorf("event %q is not a SendGrid event type", d.Get("event").String())
			}
			if !isEmail(d.Get("email")) || d.Get("timestamp").Int() != at.Unix() {
				t.Errorf("email %q or timestamp %s wrong", d.Get("email").String(), d.Get("timestamp").Raw)
			}
		},
		"mailgun": func(t *testing.T, d gjson.Result, at time.Time) {
			if !in(d.Get("event-data.event"), "accepted", "rejected", "delivered", "failed", "opened", "clicked", "unsubscribed", "complained", "stored") {
				t.Errorf("event-data.event %q is not a Mailgun event", d.Get("event-data.event").String())
			}
			if !isEmail(d.Get("event-data.recipient")) {
				t.Errorf("event-data.recipient %q", d.Get("event-data.recipient").String())
			}
			for _, f := range []string{"signature.timestamp", "signature.token", "signature.signature", "event-data.id"} {
				if d.Get(f).String() == "" {
					t.Errorf("%s missing", f)
				}
			}
			if ts := d.Get("event-data.timestamp").Float(); math.Abs(ts-float64(at.UnixMicro())/1e6) > 1e-6 {
				t.Errorf("event-data.timestamp %s, want %f", d.Get("event-data.timestamp").Raw, float64(at.UnixMicro())/1e6)
			}
		},
		"ses": func(t *testing.T, d gjson.Result, at time.Time) {
			if !in(d.Get("eventType"), "Bounce", "Complaint", "Delivery", "Send", "Reject", "Open", "Click", "Rendering Failure", "DeliveryDelay", "Subscription") {
				t.Errorf("eventType %q is not an SES event type", d.Get("eventType").String())
			}
			if d.Get("mail.messageId").String() == "" {
				t.Error("mail.messageId missing")
			}
			if !isEmail(d.Get("mail.destination.0")) || !isEmail(d.Get("mail.source")) {
				t.Errorf("mail.destination %s or mail.source wrong", d.Get("mail.destination").Raw)
			}
			ts, err := time.Parse(time.RFC3339Nano, d.Get("mail.timestamp").String())
			if err != nil || !ts.Equal(at) {
				t.Errorf("mail.timestamp %q (%v), want %v", d.Get("mail.timestamp").String(), err, at)
			}
		},
	}
	seen := map[string]int{}
	for i, ev := range generate(t, Workload{Seed: 77, Entities: 1000}, 3000) {
		root := gjson.ParseBytes(ev.payload)
		src := root.Get("source").String()
		check, ok := checks[src]
		if !ok {
			t.Fatalf("event %d: no check for source %q", i, src)
		}
		seen[src]++
		if seen[src] > 200 {
			continue
		}
		t.Run(src+"/"+ev.id, func(t *testing.T) { check(t, root.Get("data"), ev.time) })
	}
	for src := range checks {
		if seen[src] == 0 {
			t.Errorf("vendor %s never generated", src)
		}
	}
}

func TestNewGeneratorDefaults(t *testing.T) {
	// A zero Workload must still generate sane events (defaults applied).
	evs := generate(t, Workload{}, 1000)
	for i, ev := range evs {
		if !gjson.ValidBytes(ev.payload) {
			t.Fatalf("event %d invalid", i)
		}
		if n := len(ev.payload); n < 512-11 || n > 5*1024 {
			t.Errorf("event %d: %d bytes outside the default 512..5120", i, n)
		}
		entity, _ := strconv.Atoi(ev.key[strings.IndexByte(ev.key, ':')+1:])
		if entity >= 10000 {
			t.Errorf("event %d: entity %d beyond the default 10000", i, entity)
		}
	}
}

// TestEmailTypeAgreesWithVendorEvent checks the envelope's canonical type
// against the vendor's own event field, which enrich will map from.
func TestEmailTypeAgreesWithVendorEvent(t *testing.T) {
	evs := generate(t, Workload{Seed: 3, Entities: 300, Mix: Mix{Email: 1}}, 3000)
	vendorField := map[string]string{"sendgrid": "data.event", "mailgun": "data.event-data.event", "ses": "data.eventType"}
	vendorWords := map[string][9]string{"sendgrid": sendgridEvents, "mailgun": mailgunEvents, "ses": sesEvents}
	seen := map[string]int{}
	for _, ev := range evs {
		r := gjson.ParseBytes(ev.payload)
		src, typ := r.Get("source").String(), r.Get("type").String()
		word := r.Get(vendorField[src]).String()
		ok := false
		for i, k := range emailKinds {
			if k == typ && vendorWords[src][i] == word {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("%s event with type %q has vendor event %q", src, typ, word)
		}
		seen[src]++
	}
	if len(seen) != 3 {
		t.Fatalf("vendors seen: %v, want sendgrid, mailgun and ses", seen)
	}
}

// TestSameSeedSameEventsAtAnyTime: the bench regenerates a run's events to
// audit it, later and on another clock, so the clock must not change them.
func TestSameSeedSameEventsAtAnyTime(t *testing.T) {
	w := Workload{Seed: 9, Duplicates: 0.05, Poison: 0.01}
	clocks := []time.Time{
		time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),         // formats short: no fraction
		time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC), // formats long
	}
	var ids [2][]string
	for i, c := range clocks {
		g := NewGenerator(w, func() time.Time { return c })
		var ev pipeline.Event
		for range 5000 {
			g.Next(&ev, nil)
			ids[i] = append(ids[i], ev.ID)
		}
	}
	if !slices.Equal(ids[0], ids[1]) {
		t.Fatal("the same seed produced different event ids under different clocks")
	}
}
