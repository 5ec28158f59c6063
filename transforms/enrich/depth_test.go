package enrich

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// A body nested past pipeline.DefaultMaxJSONDepth fails permanently with
// the limit as its reason (dead-lettered), within bounded memory; one
// inside the limit is mapped.
func TestDeepBodyIsFailedWithTheReason(t *testing.T) {
	e := newEnrich(t, Config{})
	nest := func(n int) string {
		return `{"id":"e1","source":"sendgrid","type":"open","data":{"email":"a@b.c","timestamp":1700000000,"x":` +
			strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`
	}
	ok := &pipeline.Event{ID: "ok", Body: []byte(nest(100))}
	deep := &pipeline.Event{ID: "deep", Body: []byte(nest(4 << 20))}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := e.Apply(context.Background(), []*pipeline.Event{ok, deep})
	runtime.ReadMemStats(&after)
	if len(out) != 1 || out[0] != ok {
		t.Fatalf("survivors %v, want the 100-level event", out)
	}
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 1 || be.Failures[0].Index != 1 || !pipeline.IsPermanent(be.Failures[0].Err) ||
		!strings.Contains(be.Failures[0].Err.Error(), "nested deeper than 512") {
		t.Fatalf("err = %v, want the deep event failed permanently with the depth reason", err)
	}
	// The 8 MB body is held by the test; the check itself allocates nothing.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("Apply allocated %d MB", grew>>20)
	}
}
