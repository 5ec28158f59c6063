package enrich

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/tidwall/gjson"
)

var fixed = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newEnrich(t *testing.T, c Config) *Enrich {
	t.Helper()
	if c.Unknown == "" {
		c.Unknown = "fail"
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New("crm-sync", c)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return fixed }
	return e
}

func TestEmailNormalization(t *testing.T) {
	tests := []struct {
		in, want, domain string
		strip, free      bool
	}{
		{"  Ada.Lovelace@Acme-Corp.COM ", "ada.lovelace@acme-corp.com", "acme-corp.com", false, false},
		{"ada+crm@acme.com", "ada+crm@acme.com", "acme.com", false, false},
		{"ada+crm@acme.com", "ada@acme.com", "acme.com", true, false},
		{"Grace+a+b@GMAIL.com", "grace@gmail.com", "gmail.com", true, true},
		{"bob@proton.me", "bob@proton.me", "proton.me", false, true},
		{"no-at-sign", "no-at-sign", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e := newEnrich(t, Config{StripTags: tt.strip})
			body := `{"id":"e1","source":"sendgrid","type":"open","data":{"email":"` + tt.in + `","timestamp":1700000000}}`
			ev := &pipeline.Event{ID: "e1", Body: []byte(body)}
			if _, err := e.Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
				t.Fatal(err)
			}
			r := gjson.ParseBytes(ev.Body).Get("recipient")
			if got := r.Get("email").Str; got != tt.want {
				t.Errorf("email = %q, want %q", got, tt.want)
			}
			if got := r.Get("domain").Str; got != tt.domain {
				t.Errorf("domain = %q, want %q", got, tt.domain)
			}
			if tt.domain != "" && r.Get("free_mail").Bool() != tt.free {
				t.Errorf("free_mail = %v, want %v", r.Get("free_mail").Bool(), tt.free)
			}
		})
	}
}

// TestVendorsMapToCanonical maps the generator's payloads of every vendor
// and checks the canonical shape.
func TestVendorsMapToCanonical(t *testing.T) {
	want := map[string]struct{ kind, role string }{
		"salesforce": {"contact", "actor"}, "hubspot": {"contact", "actor"},
		"greenhouse": {"candidate", "actor"}, "lever": {"candidate", "actor"},
		"sendgrid": {"message", "recipient"}, "mailgun": {"message", "recipient"}, "ses": {"message", "recipient"},
	}
	e := newEnrich(t, Config{StripTags: true})
	g := generate.NewGenerator(generate.Workload{Seed: 7}, func() time.Time { return fixed })
	var buf []byte
	seen := map[string]int{}
	for i := 0; i < 700; i++ {
		ev := &pipeline.Event{}
		buf = g.Next(ev, buf[:0:0])
		ev.Body = ev.Payload
		orig := string(ev.Payload)
		src := gjson.GetBytes(ev.Payload, "source").Str
		out, err := e.Apply(context.Background(), []*pipeline.Event{ev})
		if err != nil || len(out) != 1 {
			t.Fatalf("%s event: %v", src, err)
		}
		if string(ev.Payload) != orig {
			t.Fatal("payload changed")
		}
		if !gjson.ValidBytes(ev.Body) {
			t.Fatalf("invalid JSON: %s", ev.Body)
		}
		c := gjson.ParseBytes(ev.Body)
		w := want[src]
		seen[src]++
		checks := map[string]bool{
			"id":             c.Get("id").Str == ev.ID,
			"source":         c.Get("source").Str == src,
			"type":           c.Get("type").Str == gjson.Get(orig, "type").Str,
			"entity.kind":    c.Get("entity.kind").Str == w.kind,
			"entity.id":      c.Get("entity.id").Str != "",
			"account_id":     strings.HasPrefix(c.Get("account_id").Str, "acct_"),
			"occurred_at":    c.Get("occurred_at").Str == fixed.Format(time.RFC3339Nano),
			"email":          strings.Contains(c.Get(w.role+".email").Str, "@") && c.Get(w.role+".email").Str == strings.ToLower(c.Get(w.role+".email").Str) && !strings.Contains(c.Get(w.role+".email").Str, "+"),
			"domain":         strings.HasSuffix(c.Get(w.role+".email").Str, "@"+c.Get(w.role+".domain").Str),
			"free_mail":      c.Get(w.role + ".free_mail").Exists(),
			"attributes":     c.Get("attributes").IsObject() && len(c.Get("attributes").Map()) > 0,
			"ingested_at":    c.Get("ingested_at").Str == fixed.Format(time.RFC3339Nano),
			"pipeline":       c.Get("pipeline").Str == "crm-sync",
			"no vendor data": !c.Get("data").Exists(),
		}
		for name, ok := range checks {
			if !ok {
				t.Errorf("%s event %s: %s wrong in %s", src, ev.ID, name, ev.Body)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	for v := range want {
		if seen[v] == 0 {
			t.Errorf("no %s events generated", v)
		}
	}
}

func TestAccountsLookup(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "accounts.csv")
	os.WriteFile(csvPath, []byte("domain,account_id,name,tier\nacme.com,acct_9,Acme Corp,enterprise\n"), 0o644)
	jsonPath := filepath.Join(dir, "accounts.json")
	os.WriteFile(jsonPath, []byte(`[{"domain":"ACME.com","account_id":"acct_9","name":"Acme Corp","tier":"enterprise"}]`), 0o644)
	for _, path := range []string{csvPath, jsonPath} {
		t.Run(filepath.Ext(path), func(t *testing.T) {
			e := newEnrich(t, Config{Accounts: path})
			tests := []struct {
				email, accountID, tier string
			}{
				{"x@acme.com", "acct_9", "enterprise"}, // looked up; table fills account_id
				{"x@other.com", "", ""},                // no row
				{"x@gmail.com", "", ""},                // free mail is never looked up
			}
			for _, tt := range tests {
				ev := &pipeline.Event{ID: "a", Body: []byte(`{"source":"hubspot","type":"contact.created","data":{"id":"1","properties":{"email":"` + tt.email + `"}}}`)}
				if _, err := e.Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
					t.Fatal(err)
				}
				c := gjson.ParseBytes(ev.Body)
				if got := c.Get("account_id").Str; got != tt.accountID {
					t.Errorf("%s: account_id = %q, want %q", tt.email, got, tt.accountID)
				}
				if got := c.Get("account.tier").Str; got != tt.tier {
					t.Errorf("%s: account.tier = %q, want %q", tt.email, got, tt.tier)
				}
			}
		})
	}
}

func TestUnknownSourceAndInto(t *testing.T) {
	in := func() []*pipeline.Event {
		return []*pipeline.Event{
			{ID: "a", Body: []byte(`{"source":"pipedrive","data":{}}`)},
			{ID: "b", Body: []byte(`{"source":"ses","type":"delivered","data":{"mail":{"messageId":"m1","destination":["A@B.io"]}}}`)},
		}
	}
	e := newEnrich(t, Config{})
	out, err := e.Apply(context.Background(), in())
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 1 || be.Failures[0].Index != 0 || !pipeline.IsPermanent(be.Failures[0].Err) || !errors.Is(be.Failures[0].Err, ErrUnknownSource) {
		t.Fatalf("want event 0 failed permanently as unknown source, got %v", err)
	}
	if len(out) != 1 || out[0].ID != "b" {
		t.Fatalf("survivors: %v", out)
	}

	e = newEnrich(t, Config{Unknown: "pass", Into: "canonical"})
	evs := in()
	out, err = e.Apply(context.Background(), evs)
	if err != nil || len(out) != 2 {
		t.Fatalf("pass: %v", err)
	}
	if string(out[0].Body) != `{"source":"pipedrive","data":{}}` {
		t.Errorf("unknown source changed: %s", out[0].Body)
	}
	if gjson.GetBytes(out[1].Body, "canonical.recipient.email").Str != "a@b.io" || !gjson.GetBytes(out[1].Body, "data.mail").Exists() {
		t.Errorf("into: %s", out[1].Body)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(bad, []byte("name,tier\nx,y\n"), 0o644)
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"defaults", Config{Unknown: "fail"}, ""},
		{"bad unknown", Config{Unknown: "drop"}, "unknown"},
		{"accounts not csv or json", Config{Unknown: "fail", Accounts: "accounts.xlsx"}, "accounts"},
	}
	// Files are read when the step is built.
	for _, path := range []string{"/nonexistent.csv", bad} {
		if _, err := New("p", Config{Unknown: "fail", Accounts: path}); err == nil || !strings.Contains(err.Error(), "accounts:") {
			t.Errorf("New with accounts %s = %v, want an accounts error", path, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *pipeline.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate = %v, want error on %s", err, tt.field)
			}
		})
	}
}
