package enrich

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/pipeline"
)

// readBefore is (*Enrich).read as it was before data's paths were read in
// the envelope's scan: envelope.ReadChecked, then the mapping's paths
// read from data on their own (readReference), the vendor's default when
// the type's guard rejects the record.
func readBefore(body string, unknown string) (m *mapping, out [maxSlots]gjson.Result, ok bool, err error) {
	var env envelope.Fields
	if err := envelope.ReadChecked(body, &env, pipeline.DefaultMaxJSONDepth); err != nil {
		return nil, out, false, err
	}
	v, known := vendors[env.Source().Str]
	if !known {
		if unknown == "pass" {
			return nil, out, false, nil
		}
		return nil, out, false, ErrUnknownSource
	}
	data := env.Data()
	if !data.IsObject() {
		return nil, out, false, errors.New("no data object")
	}
	m = v.lookup(env.Type().Str)
	out, admitted := readReference(m, data)
	if !admitted && m != v.def {
		m = v.def
		out, _ = readReference(m, data)
	}
	return m, out, true, nil
}

// checkRead holds read (the envelope and data's paths in one scan) to
// readBefore: the same error or none, the same mapping and every slot
// alike (type, raw text, string and number).
func checkRead(t *testing.T, e *Enrich, body []byte) {
	t.Helper()
	wm, want, wok, werr := readBefore(string(body), e.cfg.Unknown)
	var r record
	ok, err := e.read(&pipeline.Event{ID: "x", Body: body}, &r)
	if (err != nil) != (werr != nil) || ok != wok {
		t.Fatalf("%.200q: ok %v err %v, before: ok %v err %v", body, ok, err, wok, werr)
	}
	if !ok {
		return
	}
	if r.m != wm {
		t.Fatalf("%.200q: mapping %s, before %s", body, r.m.kind, wm.kind)
	}
	for s := range want {
		g, w := r.f[s], want[s]
		if g.Type != w.Type || g.Raw != w.Raw || g.Str != w.Str || g.Num != w.Num {
			t.Fatalf("%.200q: slot %d = %#v, before %#v", body, s, g, w)
		}
	}
}

var foldSeeds = []string{
	`{"id":"e1","source":"hubspot","type":"contact.updated","account_id":"a","occurred_at":"o","key":"k","data":{"id":"1","properties":{"email":"a@b.c","firstname":"A","email":"dup"},"archived":false,"updatedAt":"2026-01-01T00:00:00Z"}}`,
	`{"source":"mailgun","type":"failed","data":{"event-data":{"message":{"headers":{"message-id":"m1","subject":"s"}},"recipient":"x@y.z","delivery-status":{"code":550}},"event-data":{"id":"second"}}}`,
	`{"source":"mailgun","type":"x","data":{"event-data":{"message":{"headers":{"subject":"s"}},"message":{"headers":{"message-id":"m2","subject":"t"}}}}}`, // below the top: looked for under the next equal key
	`{"source":"salesforce","type":"lead.converted","data":{"attributes":{"type":"Contact"},"Id":"00Q","Email":"a@b.c","attributes":{"type":"Lead"}}}`,
	`{"source":"salesforce","type":"lead.created","data":{"attributes":{"type":"Lead"},"Id":"00Q","Email":"a\u0040b.c","IsConverted":true,"City":null}}`,
	`{"source":"greenhouse","type":"application.updated","data":{"id":5,"jobs":[{"id":1,"name":"j"}],"current_stage":"scalar"}}`,
	`{"source":"greenhouse","type":"candidate.updated","data":{"email_addresses":[{"value":"a@b.c"}],"applications":[{"id":1,"current_stage":{"name":"x"}}],"tags":["a"]}}`,
	`{"source":"greenhouse","type":"job.updated","data":{"departments":[{"name":"a"},{"name":"b"}],"offices":{"name":"x"}}}`,
	`{"source":"ses","type":"bounce","data":{"mail":{"destination":["a@b.c"],"messageId":"m"},"bounce":{"bouncedRecipients":[{"status":"5.1.1"}]},"mail":"scalar"}}`,
	`{"source":"lever","type":"x","data":{"emails":"not an array","archived":{"archivedAt":1.5e3}}}`,
	`{"data":{"Id":"1"},"source":"salesforce","type":"contact"}`,              // data before source: read after the scan
	`{"source":"salesforce","data":{"Id":"1"},"type":"account.updated"}`,      // data before type
	`{"source":"salesforce","type":"task","data":{"Id":"1","Subject":(1)}}`,   // the slow readers
	`{"source":"salesforce","type":"task","data":{"Id":"1","W\u0068atId":2}}`, // an escaped key
	`{"source":"nobody","type":"t","data":{}}`,
	`{"source":"sendgrid","type":"t","data":[]}`,
	`{"source":"sendgrid","type":"t","data":{"email":"a@b.c","a":[[[[[[[[]]]]]]]]}}`,
	`{"source":"sendgrid","type":"t","data":{"email":"a@b.c"}} `,
}

func TestReadFoldedAsBefore(t *testing.T) {
	for _, unknown := range []string{"fail", "pass"} {
		e := newEnrich(t, Config{StripTags: true, Unknown: unknown})
		for _, s := range foldSeeds {
			checkRead(t, e, []byte(s))
		}
		for _, ev := range recordedEvents(t) {
			checkRead(t, e, ev.Payload)
		}
	}
}

// FuzzReadFolded: on any valid JSON (decode refuses the rest before
// enrich sees it), read finds what readBefore finds.
func FuzzReadFolded(f *testing.F) {
	for _, s := range foldSeeds {
		f.Add([]byte(s))
	}
	e, err := New(pipeline.NewBuildContext("fuzz", "test", nil, nil), Config{Unknown: "fail"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if json.Valid(body) {
			checkRead(t, e, body)
		}
	})
}
