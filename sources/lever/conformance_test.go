package lever_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/lever"
)

// TestConformance runs the source table against the Lever stand-in, ten
// opportunities per page, so a feed spans several batches. Lever's cursor
// is the server's Date, so the stand-in's clock is a pollertest.Clock.
func TestConformance(t *testing.T) {
	pollertest.TestConformance(t, func(t *testing.T) pollertest.Vendor {
		a := newAPI(t)
		clock := pollertest.NewClock(base)
		a.date = clock.Now
		fed := 0
		return pollertest.Vendor{
			Feed: func(t *testing.T, n int) []string {
				at := clock.Modify()
				a.add(fed, n, at)
				var ids []string
				for i := fed; i < fed+n; i++ {
					ids = append(ids, poller.EventID("lever", "opportunities", oppID(i), time.UnixMilli(at.UnixMilli())))
				}
				fed += n
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source { return openConformanceSource(t, a, pc) },
		}
	})
}

// openConformanceSource is the one place the conformance test builds a
// source.
func openConformanceSource(t *testing.T, a *api, pc poller.Config) pipeline.Source {
	var c lever.Config
	c.SetDefaults()
	c.Config = pc
	c.APIKey, c.BaseURL, c.Limit = apiKey, a.srv.URL+"/v1", 10
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := lever.New(pipeline.BuildContext{Pipeline: "conf", Logger: slog.New(slog.DiscardHandler)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
