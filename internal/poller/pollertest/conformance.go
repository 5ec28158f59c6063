package pollertest

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
)

// Vendor is one polling source under the conformance table: Feed adds n
// records (modified later than every record before them; from is how many
// it has added before, so the i-th record of the case is i) to the
// vendor's API stand-in and returns their event ids; Open builds the
// source with the shared settings pc (embed them in the vendor's Config,
// see Build) and the stand-in's URL and credentials.
type Vendor struct {
	Feed func(t *testing.T, from, n int) []string
	Open func(t *testing.T, pc poller.Config) pipeline.Source
}

// Build is how a vendor's Open builds its source: a Config with the
// vendor's defaults, filled by set (the shared pc, the stand-in's URL,
// credentials, page size), validated, then built by build (the vendor's
// New) with a BuildContext that discards logs. It fails t on any error.
func Build[C any, P interface {
	*C
	SetDefaults()
	Validate() error
}](t *testing.T, build func(pipeline.BuildContext, C) (*poller.Source, error), set func(c *C)) pipeline.Source {
	t.Helper()
	var c C
	P(&c).SetDefaults()
	set(&c)
	if err := P(&c).Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := build(pipeline.BuildContext{Pipeline: "conf", Logger: slog.New(slog.DiscardHandler)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the source table on a polling source. A poller
// never ends (Finite false) and keeps a cursor per object in a checkpoint
// file of the case's own (Checkpoints true). Overlap is 0: with an overlap
// a reopened poller re-reads, by design, the records modified in the last
// `overlap` before its cursor and hands them out again (at-least-once);
// without one the suite checks that the cursor itself is exact.
func TestConformance(t *testing.T, vendor func(t *testing.T) Vendor) {
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		v := vendor(t)
		fed := 0
		var pc poller.Config
		pc.SetDefaults()
		pc.Interval = pipeline.Duration(10 * time.Millisecond)
		pc.CheckpointInterval = pipeline.Duration(20 * time.Millisecond)
		pc.Overlap = 0
		pc.AccountID = "acct_conf"
		pc.Checkpoint = poller.CheckpointConfig{Key: "conf", File: &poller.FileCheckpoint{Path: filepath.Join(t.TempDir(), "cursors.json")}}
		if err := pc.Validate(); err != nil {
			t.Fatal(err)
		}
		return &conformance.SourceUnderTest{
			Checkpoints: true,
			Feed: func(t *testing.T, n int) []string {
				ids := v.Feed(t, fed, n)
				fed += n
				return ids
			},
			Open: func(t *testing.T) pipeline.Source { return v.Open(t, pc) },
		}
	})
}

// Clock is the clock of an API stand-in for a source that is not sorted
// (lever, greenhouse): such a poller's cursor is the server's Date when a
// query started, which has one second's precision, so a record modified in
// the same second as a later query began is read again after a restart (a
// repeat, by design). Records stamped by Modify never share a second with
// a Date, which keeps the suite's resume check exact.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at start (whole seconds).
func NewClock(start time.Time) *Clock { return &Clock{now: start.Truncate(time.Second)} }

// Now is what the stand-in's Date header shows.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Modify is the stamp of a record modified now: a second after every Date
// shown so far and a second before the next.
func (c *Clock) Modify() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	st := c.now
	c.now = c.now.Add(time.Second)
	return st
}
