package hubspot_test

import (
	"testing"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/hubspot"
)

// TestConformance runs the source table against the portal stand-in:
// contacts one millisecond apart, five per page, so a feed spans several
// batches.
func TestConformance(t *testing.T) {
	pollertest.TestConformance(t, func(t *testing.T) pollertest.Vendor {
		p := newPortal(t)
		return pollertest.Vendor{
			Feed: func(t *testing.T, from, n int) []string {
				p.add(from, n, 1)
				p.mu.Lock()
				defer p.mu.Unlock()
				var ids []string
				for i := from; i < from+n; i++ {
					ids = append(ids, eventID(*p.contacts[i]))
				}
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source {
				return pollertest.Build(t, hubspot.New, func(c *hubspot.Config) {
					c.Config = pc
					c.Token, c.BaseURL, c.PageSize = pat, p.srv.URL, 5
					c.Objects = []hubspot.Object{{Name: "contacts", Properties: []string{"email"}}}
				})
			},
		}
	})
}
