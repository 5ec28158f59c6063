package encode

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// TestCanonicalSchemaEvolvesCompatibly: docs/canonical-event.avsc is a
// compatible evolution of the first published schema
// (testdata/canonical-event.v1.avsc): no field removed or retyped, and every
// added field optional with a default (BACKWARD and FORWARD under Avro's
// resolution rules). Then, with goavro, an event written with the old
// schema is read into the new one: the new fields take their defaults and
// the old ones are unchanged.
func TestCanonicalSchemaEvolvesCompatibly(t *testing.T) {
	oldText, err := os.ReadFile("testdata/canonical-event.v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	newText, err := os.ReadFile("../../docs/canonical-event.avsc")
	if err != nil {
		t.Fatal(err)
	}
	type field struct {
		Name    string          `json:"name"`
		Type    json.RawMessage `json:"type"`
		Default json.RawMessage `json:"default"`
	}
	fields := func(b []byte) map[string]field {
		var s struct{ Fields []field }
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		m := map[string]field{}
		for _, f := range s.Fields {
			m[f.Name] = f
		}
		return m
	}
	oldF, newF := fields(oldText), fields(newText)
	for name, of := range oldF {
		nf, ok := newF[name]
		if !ok {
			t.Errorf("field %s removed", name)
			continue
		}
		var a, b any
		json.Unmarshal(of.Type, &a)
		json.Unmarshal(nf.Type, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("field %s changed type: %s → %s", name, of.Type, nf.Type)
		}
	}
	added := 0
	for name, nf := range newF {
		if _, ok := oldF[name]; ok {
			continue
		}
		added++
		var union []any
		if string(nf.Default) != "null" || json.Unmarshal(nf.Type, &union) != nil || len(union) < 2 || union[0] != "null" {
			t.Errorf("added field %s is not optional with default null: type %s default %s", name, nf.Type, nf.Default)
		}
	}
	if added == 0 {
		t.Fatal("no field added: the test compares nothing")
	}

	oldC, err := goavro.NewCodec(string(oldText))
	if err != nil {
		t.Fatal(err)
	}
	newC, err := goavro.NewCodec(string(newText))
	if err != nil {
		t.Fatal(err)
	}
	const v1 = `{"id":"sendgrid:sg-1","source":"sendgrid","type":"bounce","entity":{"kind":"message","id":"m1"},"actor":null,
		"recipient":{"sluice.Person":{"email":"ada@acme-corp.com","domain":{"string":"acme-corp.com"},"free_mail":{"boolean":false}}},
		"account_id":{"string":"acct_demo"},"account":null,"occurred_at":{"string":"2026-03-02T10:00:07Z"},
		"attributes":{"vendor_event":{"string":"bounce"}},"ingested_at":"2026-11-23T12:00:00Z","pipeline":"p"}`
	native, _, err := oldC.NativeFromTextual([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := oldC.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	written, _, err := oldC.NativeFromBinary(bin) // what an old producer wrote
	if err != nil {
		t.Fatal(err)
	}
	// Reading it with the new schema: the missing fields take their defaults.
	nbin, err := newC.BinaryFromNative(nil, written)
	if err != nil {
		t.Fatalf("an old event does not fit the new schema: %v", err)
	}
	read, _, err := newC.NativeFromBinary(nbin)
	if err != nil {
		t.Fatal(err)
	}
	rm, wm := read.(map[string]any), written.(map[string]any)
	for name := range newF {
		_, old := oldF[name]
		switch {
		case old && !reflect.DeepEqual(rm[name], wm[name]):
			t.Errorf("field %s: %v, written %v", name, rm[name], wm[name])
		case !old && rm[name] != nil:
			t.Errorf("new field %s: %v, want its default null", name, rm[name])
		}
	}
}
