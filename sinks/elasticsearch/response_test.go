package elasticsearch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestItemsMapping maps bulk responses of three documents back to their
// events: successes, an existing document under create, retryable and
// permanent item failures, and responses whose items do not match the
// documents sent (every event retried).
func TestItemsMapping(t *testing.T) {
	const (
		ok      = `{"index":{"result":"created","status":201}}`
		busy    = `{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected"}}}`
		mapping = `{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad field","caused_by":{"type":"x","reason":"y"}}}}`
		exists  = `{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}}`
		strErr  = `{"index":{"status":400,"error":"plain text"}}`
	)
	resp := func(errs bool, items ...string) string {
		return fmt.Sprintf(`{"errors":%t,"items":[%s]}`, errs, strings.Join(items, ","))
	}
	tests := []struct {
		name   string
		action string
		resp   string
		want   [3]string // per event: "" stored, "retry: …" or "permanent: …" with a part of the message
	}{
		{"all stored", ActionIndex, resp(false, ok, ok, ok), [3]string{}},
		{"retryable and permanent items", ActionIndex, resp(true, ok, busy, mapping), [3]string{"", "retry: rejected", "permanent: bad field (caused by x: y)"}},
		{"an error given as text", ActionIndex, resp(true, strErr, ok, ok), [3]string{"permanent: plain text", "", ""}},
		{"create: an existing document is stored", ActionCreate, resp(true, exists, ok, ok), [3]string{}},
		{"index: a conflict is retried", ActionIndex, resp(true, exists, ok, ok), [3]string{"retry: exists"}},
		{"fewer items than documents", ActionIndex, resp(false, ok, ok), [3]string{"retry: 2 items for 3", "retry: 2 items for 3", "retry: 2 items for 3"}},
		{"more items than documents", ActionIndex, resp(true, ok, busy, ok, ok, ok), [3]string{"retry: 5 items for 3", "retry: 5 items for 3", "retry: 5 items for 3"}},
		{"no items", ActionIndex, `{"errors":false}`, [3]string{"retry: without items", "retry: without items", "retry: without items"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			c.URLs = []string{"http://127.0.0.1:1"}
			c.Index = *pipeline.MustParseTemplate("events")
			c.Action = tt.action
			s, err := New(pipelinetest.BuildContext(), c)
			if err != nil {
				t.Fatal(err)
			}
			items := []item{{idx: 0}, {idx: 1}, {idx: 2}}
			w := &work{errs: make([]error, 3)}
			s.items(w, items, []byte(tt.resp))
			for i, want := range tt.want {
				got := w.errs[i]
				switch {
				case want == "" && got != nil:
					t.Errorf("event %d: %v, want stored", i, got)
				case want == "":
				case got == nil:
					t.Errorf("event %d stored, want %s", i, want)
				default:
					class, part, _ := strings.Cut(want, ": ")
					if (class == "permanent") != pipeline.IsPermanent(got) || !strings.Contains(got.Error(), part) {
						t.Errorf("event %d: %v (permanent %v), want %s", i, got, pipeline.IsPermanent(got), want)
					}
				}
			}
		})
	}
}
