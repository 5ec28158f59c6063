package lever_test

import (
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
		return pollertest.Vendor{
			Feed: func(t *testing.T, from, n int) []string {
				at := clock.Modify()
				a.add(from, n, at)
				var ids []string
				for i := from; i < from+n; i++ {
					ids = append(ids, poller.EventID("lever", "opportunities", oppID(i), time.UnixMilli(at.UnixMilli())))
				}
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source {
				return pollertest.Build(t, lever.New, func(c *lever.Config) {
					c.Config = pc
					c.APIKey, c.BaseURL, c.Limit = apiKey, a.srv.URL+"/v1", 10
				})
			},
		}
	})
}
