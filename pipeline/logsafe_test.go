package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// Reasons often quote the payload ("starts \"…\"", Elasticsearch's
// "Preview of field's value: '…'"). Logs and the exit error carry the id,
// the size and the reason with quoted values elided; the payload and the
// full reason go only to the dead-letter sink.
func TestNoPayloadBytesInLogsOrErrors(t *testing.T) {
	const pii = "alice.secret@example.com"
	payload := `{"email":"` + pii + `"}`
	failWith := func(h *harness, retries bool) {
		h.sinks[0].WriteFunc = func(_ context.Context, call int, batch []*pipeline.Event) error {
			be := pipeline.NewBatchError()
			for i := range batch {
				if retries && call == 1 {
					be.Fail(i, fmt.Errorf("es_rejected_execution_exception: document starts %q", payload[:20]))
					continue
				}
				be.Fail(i, pipeline.Permanent(fmt.Errorf("decode json: not an object (starts %q); Preview of field's value: '%s'", payload, pii)))
			}
			return be.Err()
		}
	}
	newSrc := func() *pipelinetest.Source {
		evs := events("e", 1, oneKey)
		evs[0].Payload = []byte(payload)
		return pipelinetest.NewSource(evs)
	}
	for _, tc := range []struct {
		name     string
		withDead bool
	}{{"dead-lettered", true}, {"no dead letter: the run stops", false}} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSrc()
			src.BlockWhenDone = !tc.withDead
			h := start(t, "batch: {max_events: 1, max_wait: 5ms}\n"+fastRetry, src, 1, tc.withDead, nil)
			failWith(h, true)
			h.run()
			runErr := h.wait()
			out := h.logs.String()
			if runErr != nil {
				out += "\n" + runErr.Error()
			}
			if strings.Contains(out, pii) || strings.Contains(out, "alice") {
				t.Fatalf("payload bytes in logs or errors:\n%s", out)
			}
			for _, want := range []string{"e-0", "decode json: not an object", "payload_bytes=" + fmt.Sprint(len(payload))} {
				if !strings.Contains(out, want) {
					t.Errorf("logs lack %q:\n%s", want, out)
				}
			}
			if !tc.withDead {
				if !errors.Is(runErr, pipeline.ErrNoDeadLetter) {
					t.Fatalf("Run = %v", runErr)
				}
				return
			}
			var dl pipeline.DeadLetter
			if err := json.Unmarshal([]byte(h.dead.Writes()[0].Body), &dl); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dl.Reason, pii) || !strings.Contains(string(dl.Payload), pii) {
				t.Fatalf("the dead letter lost the full reason or payload: %+v", dl)
			}
		})
	}
}

func TestElideQuoted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`no quotes, can't fail`, `no quotes, can't fail`},
		{`starts "{\"email\":\"a@b\"}" here`, `starts "…" here`},
		{`value: 'a@b.c' and "x"`, `value: '…' and "…"`},
		{`empty ""`, `empty ""`},
		{`unclosed "abc`, `unclosed "…`},
		{`it's 'x'`, `it's '…'`},
	} {
		if got := pipeline.ElideQuoted(tc.in); got != tc.want {
			t.Errorf("ElideQuoted(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	err := pipeline.LogSafe(pipeline.Permanent(errors.New(`bad "x"`)))
	if !pipeline.IsPermanent(err) || err.Error() != `bad "…"` {
		t.Errorf("LogSafe = %v (permanent %v)", err, pipeline.IsPermanent(err))
	}
}
