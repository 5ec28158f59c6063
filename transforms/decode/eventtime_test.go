package decode

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/sluicehq/sluice/pipeline"
)

// TestNumericEventTimes: decimal event times are read exactly, and a
// number that is no event time dead-letters the record even without
// require_time (a hostile record must not carry year 292277026304 on).
func TestNumericEventTimes(t *testing.T) {
	source := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		payload string
		want    string // RFC 3339 nano; "" = the event fails as out of range
	}{
		{`{"ts":1772445607.318224}`, "2026-03-02T10:00:07.318224Z"},
		{`{"ts":1772445607318}`, "2026-03-02T10:00:07.318Z"},
		{`{"ts":1e300}`, ""},
		{`{"ts":-1}`, ""},
		{`{"ts":253402300800}`, ""}, // the first second of year 10000
	} {
		ev := &pipeline.Event{ID: "a", Time: source, Payload: []byte(tc.payload)}
		_, err := newJSON(t, Config{Format: "json", Time: "ts"}).Apply(context.Background(), []*pipeline.Event{ev})
		if tc.want == "" {
			var be *pipeline.BatchError
			if !errors.As(err, &be) || len(be.Failures) != 1 || !pipeline.IsPermanent(be.Failures[0].Err) || !errors.Is(be.Failures[0].Err, eventtime.ErrOutOfRange) {
				t.Errorf("%s: err %v, want a permanent out-of-range failure", tc.payload, err)
			}
			continue
		}
		if err != nil || ev.Time.UTC().Format(time.RFC3339Nano) != tc.want {
			t.Errorf("%s: time %s err %v, want %s", tc.payload, ev.Time.UTC().Format(time.RFC3339Nano), err, tc.want)
		}
	}
}
