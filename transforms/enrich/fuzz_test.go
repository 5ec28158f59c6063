package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// FuzzEnrich: whatever body arrives, enrich either writes a valid JSON
// canonical event or fails that event permanently (dead letter); it never
// panics or fails retryably.
func FuzzEnrich(f *testing.F) {
	for _, s := range []string{
		`{"id":"sendgrid:1","source":"sendgrid","type":"bounce","data":{"email":"a@b.c","timestamp":1772445607.318224,"event":"bounce","type":"blocked","reason":"r","status":"5.7.1"}}`,
		`{"source":"mailgun","type":"bounce","data":{"event-data":{"timestamp":1e300,"severity":"temporary","delivery-status":{"code":452}}}}`,
		`{"source":"ses","type":"complaint","data":{"complaint":{"complaintFeedbackType":"abuse"},"mail":{"destination":["x@y.z"]}}}`,
		`{"source":"ses","type":"click","data":{"click":{"link":"https://a\"b"}}}`,
		`{"source":"salesforce","type":"contact.updated","occurred_at":"2026-11-17T09:41:05Z","system_modified_at":"0001-01-01T00:00:00Z","data":{"Id":"003"}}`,
		`{"source":"lever","type":"opportunity.updated","data":{"updatedAt":-1}}`,
		`{"source":"hubspot","data":{"properties":{"email":"\ud800@x"}}}`,
		`{"source":"greenhouse","data":[]}`, `{}`, `[]`, `{"source":1}`,
	} {
		f.Add([]byte(s))
	}
	e, err := New(pipeline.NewBuildContext("fuzz", "test", nil, nil), Config{Unknown: "fail"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return // decode refuses it before enrich sees it
		}
		ev := &pipeline.Event{ID: "x", Body: append([]byte(nil), body...)}
		out, err := e.Apply(context.Background(), []*pipeline.Event{ev})
		if err != nil {
			var be *pipeline.BatchError
			if !errors.As(err, &be) || len(be.Failures) != 1 || !pipeline.IsPermanent(be.Failures[0].Err) {
				t.Fatalf("err %v, want one permanent failure", err)
			}
			return
		}
		if len(out) != 1 || !json.Valid(out[0].Body) {
			t.Fatalf("invalid canonical event %q from %q", out[0].Body, body)
		}
	})
}
