package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

func TestTemplate(t *testing.T) {
	ev := &pipeline.Event{
		ID: "e1", Key: []byte("k1"), Time: time.Date(2026, 11, 23, 23, 30, 0, 0, time.FixedZone("x", -3600)),
		Body: []byte(`{"source":"salesforce","entity":{"kind":"contact"},"empty":""}`),
	}
	for _, tc := range []struct {
		tmpl, want, err string
	}{
		{"crm.events", "crm.events", ""},
		{"crm.{{source}}", "crm.salesforce", ""},
		{"{{source}}_{{entity.kind}}s", "salesforce_contacts", ""},
		{"crm-events-{2006.01.02}", "crm-events-2026.11.24", ""}, // event time in UTC
		{"x-{{id}}-{{key}}", "x-e1-k1", ""},
		{"crm.{{missing}}", "", `has no field "missing"`},
		{"crm.{{empty}}", "", `has no field "empty"`},
	} {
		tm, err := pipeline.ParseTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("parse %q: %v", tc.tmpl, err)
		}
		got, err := tm.RenderString(ev)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.tmpl, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
	for _, bad := range []string{"crm.{{source", "x-{2006", "a{{}}", "b{}"} {
		if _, err := pipeline.ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) succeeded", bad)
		}
	}
	if !pipeline.MustParseTemplate("plain").Static() || pipeline.MustParseTemplate("a{{b}}").Static() {
		t.Error("Static wrong")
	}
}

func TestParseFieldTemplate(t *testing.T) {
	ev := &pipeline.Event{ID: "e1", Body: []byte(`{"source":"hubspot","data":{"Id":"003A"}}`)}
	for _, tc := range []struct{ in, want string }{
		{"data.Id", "003A"},
		{"{{source}}:{{data.Id}}", "hubspot:003A"},
	} {
		tm, err := pipeline.ParseFieldTemplate(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tm.RenderString(ev); err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := pipeline.ParseFieldTemplate("{{data.Id"); err == nil {
		t.Error("an unclosed template parsed")
	}
}
