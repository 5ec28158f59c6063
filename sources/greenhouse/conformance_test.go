package greenhouse_test

import (
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/greenhouse"
)

// TestConformance runs the source table against the Harvest stand-in:
// candidates only, five per page, so a feed spans several batches.
// Greenhouse's cursor is the server's Date, so the stand-in's clock is a
// pollertest.Clock.
func TestConformance(t *testing.T) {
	pollertest.TestConformance(t, func(t *testing.T) pollertest.Vendor {
		h := newHarvest(t)
		clock := pollertest.NewClock(base)
		h.date = clock.Now
		return pollertest.Vendor{
			Feed: func(t *testing.T, from, n int) []string {
				at := clock.Modify()
				h.mu.Lock()
				defer h.mu.Unlock()
				var ids []string
				for i := from; i < from+n; i++ {
					r := &rec{id: 4000000 + i, created: at, upd: at}
					h.candidates[i] = r
					ids = append(ids, poller.EventID("greenhouse", "candidates", strconv.Itoa(r.id), at))
				}
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source {
				return pollertest.Build(t, greenhouse.New, func(c *greenhouse.Config) {
					c.Config = pc
					c.APIKey, c.BaseURL, c.PerPage = apiKey, h.srv.URL+"/v1", 5
					c.Objects = []string{"candidates"}
				})
			},
		}
	})
}
