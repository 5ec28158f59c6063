package enrich

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
)

// TestArenaBodiesAreIsolated: the canonical bodies of a batch share 64 KiB
// chunks. Each must be a full slice (len == cap), so a later step that
// appends to one body (map, encode, an edit) or an event that failed
// half-way through its write never writes into another event's body.
func TestArenaBodiesAreIsolated(t *testing.T) {
	g := generate.NewGenerator(generate.Workload{Mix: generate.Mix{CRM: 1, ATS: 1, Email: 1}, MinSize: 200, MaxSize: 6000, Entities: 50, Seed: 7}, func() time.Time { return fixed })
	e := newEnrich(t, Config{StripTags: true})
	e.now = func() time.Time { return fixed }
	batch := make([]*pipeline.Event, 400)
	for i := range batch {
		ev := &pipeline.Event{}
		g.Next(ev, nil)
		ev.Body = ev.Payload
		if i%7 == 3 { // fails in write, after part of its body is in the chunk
			ev.Body = append([]byte(`{"system_modified_at":"not a time",`), ev.Body[1:]...)
		}
		batch[i] = ev
	}
	out, err := e.Apply(context.Background(), batch)
	var be *pipeline.BatchError
	if err != nil && !errors.As(err, &be) {
		t.Fatal(err)
	}
	if len(out) == 0 || len(out) == len(batch) {
		t.Fatalf("precondition: %d of %d events mapped; want some failed in write (err %v)", len(out), len(batch), err)
	}
	want := make([][]byte, len(out))
	for i, ev := range out {
		if len(ev.Body) != cap(ev.Body) {
			t.Errorf("event %d: body len %d cap %d: an append would write into the next body", i, len(ev.Body), cap(ev.Body))
		}
		want[i] = bytes.Clone(ev.Body)
	}
	for i, ev := range out { // later steps grow every body in turn
		ev.Body = append(ev.Body[:len(ev.Body)-1], `,"later":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`...)
		if err := ev.Set("later2", i); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range out {
		got, _ := sjson.DeleteBytes(ev.Body, "later")
		got, _ = sjson.DeleteBytes(got, "later2")
		if !bytes.Equal(got, want[i]) {
			t.Errorf("event %d: body changed by another event's edit:\n got %.200s\nwant %.200s", i, got, want[i])
		}
	}
}
