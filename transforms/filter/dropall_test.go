package filter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func TestWarnsOnceWhenEverythingIsDropped(t *testing.T) {
	batch := func(n int, typ string) []*pipeline.Event {
		evs := make([]*pipeline.Event, n)
		for i := range evs {
			evs[i] = body(fmt.Sprint(i), `{"type":"`+typ+`"}`)
		}
		return evs
	}
	for _, tc := range []struct {
		name      string
		batches   [][]*pipeline.Event
		wantWarns int
	}{
		{"below the threshold", [][]*pipeline.Event{batch(DropAllThreshold-1, "x")}, 0},
		{"all dropped at the threshold", [][]*pipeline.Event{batch(DropAllThreshold/2, "x"), batch(DropAllThreshold/2, "x")}, 1},
		{"warned once only", [][]*pipeline.Event{batch(DropAllThreshold, "x"), batch(DropAllThreshold, "x"), batch(10, "x")}, 1},
		{"one kept event: never", [][]*pipeline.Event{batch(1, "keep"), batch(2*DropAllThreshold, "x")}, 0},
		{"kept later, before the threshold: never", [][]*pipeline.Event{batch(100, "x"), batch(1, "keep"), batch(2*DropAllThreshold, "x")}, 0},
		{"a failing event is not dropped: never", [][]*pipeline.Event{{body("n", `{"type":1}`)}, batch(2*DropAllThreshold, "x")}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			f, err := New(pipelinetest.BuildContext(), Config{Keep: `type == "keep" || (type != "x" && type + "" == "")`})
			if err != nil {
				t.Fatal(err)
			}
			f.log = slog.New(slog.NewTextHandler(&logs, nil))
			for _, b := range tc.batches {
				_, _ = f.Apply(context.Background(), b)
			}
			if got := strings.Count(logs.String(), "filter has dropped every event"); got != tc.wantWarns {
				t.Fatalf("%d warnings, want %d:\n%s", got, tc.wantWarns, logs.String())
			}
			if tc.wantWarns > 0 && strings.Contains(logs.String(), `type ==`) {
				t.Fatal("the warning logs the expression (config values are never logged)")
			}
		})
	}
}
