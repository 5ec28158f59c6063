package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestReadAllocatesPerBatchNotPerLine: a batch of 500 lines costs a few
// allocations (its arrays), not one or more per line.
func TestReadAllocatesPerBatchNotPerLine(t *testing.T) {
	const lines, batch = 5000, 500
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, `{"id":"e-%d","k":"key-%d","t":"2026-01-02T03:04:05Z","pad":"%s"}`+"\n", i, i%7, strings.Repeat("x", i%300))
	}
	path := writeFile(t, "in.jsonl", b.String())
	c := config(path)
	c.BatchSize, c.KeyField, c.TimeField = batch, "k", "t"
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	allocs := testing.AllocsPerRun(lines/batch-1, func() {
		if _, _, err := s.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 12 {
		t.Errorf("%.0f allocations per batch of %d lines, want a handful per batch", allocs, batch)
	}
}

// TestEarlierBatchesStayIntact: nothing of a batch is reused before it is
// acked, so events a sink still holds keep their bytes and strings.
func TestEarlierBatchesStayIntact(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, `{"id":"e-%d","n":%d}`+"\n", i, i)
	}
	b.WriteString(`{"no_id":true}` + "\n" + strings.Repeat("y", 300<<10) + "\n") // a line longer than the read buffer
	c := config(writeFile(t, "in.jsonl", b.String()))
	c.BatchSize = 4
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	all, _ := readAll(t, s)
	if len(all) != 32 {
		t.Fatalf("%d events, want 32", len(all))
	}
	for i, ev := range all[:30] {
		wantID, wantPayload := fmt.Sprintf("e-%d", i), fmt.Sprintf(`{"id":"e-%d","n":%d}`, i, i)
		line, _ := ev.Meta.Get("line")
		if ev.ID != wantID || string(ev.Payload) != wantPayload || line != fmt.Sprint(i+1) {
			t.Errorf("event %d: id %q payload %q line %q, want %q %q %d", i, ev.ID, ev.Payload, line, wantID, wantPayload, i+1)
		}
		if cap(ev.Payload) != len(ev.Payload) {
			t.Errorf("event %d: payload cap %d > len %d: an append would write into the next payload", i, cap(ev.Payload), len(ev.Payload))
		}
	}
	if all[30].ID != "in.jsonl:31" || len(all[31].Payload) != 300<<10 || all[31].ID != "in.jsonl:32" {
		t.Errorf("fallback ids %q %q, long payload %d bytes", all[30].ID, all[31].ID, len(all[31].Payload))
	}
}

// TestAckedBatchReused: once acked, a batch's arrays serve a later batch
// (its events are overwritten with the new lines, nothing of the old
// event is left); a batch not acked yet is never reused.
func TestAckedBatchReused(t *testing.T) {
	s := openTwelve(t)
	first, ack1, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first[0].Body = first[0].Payload // a step decoded it
	ev0 := first[0]
	ack1(nil)
	second, ack2, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	third, ack3, err := s.Read(context.Background())
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		batch []*pipeline.Event
		first int
	}{
		{"after the ack", second, 4},
		{"while the second is not acked", third, 8},
	}
	for _, tt := range tests {
		for i, ev := range tt.batch {
			n := tt.first + i
			want := fmt.Sprintf(`{"id":"e-%d","n":%d}`, n, n)
			line, _ := ev.Meta.Get("line")
			if string(ev.Payload) != want || ev.ID != fmt.Sprintf("e-%d", n) || line != fmt.Sprint(n+1) || ev.Body != nil {
				t.Errorf("%s: event %d = id %q payload %q line %q body %q", tt.name, i, ev.ID, ev.Payload, line, ev.Body)
			}
		}
	}
	if second[0] != ev0 {
		t.Error("the acked batch's events were not reused")
	}
	if third[0] == second[0] {
		t.Error("a batch not acked yet was reused")
	}
	ack2(nil)
	ack3(nil)
}

// openTwelve opens a file source on twelve JSON lines ({"id":"e-N","n":N})
// in batches of 4, closed when the test ends.
func openTwelve(t *testing.T) *Source {
	t.Helper()
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, `{"id":"e-%d","n":%d}`+"\n", i, i)
	}
	c := config(writeFile(t, "in.jsonl", b.String()))
	c.BatchSize = 4
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}
