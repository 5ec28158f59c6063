package hubspot_test

import (
	"log/slog"
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
		fed := 0
		return pollertest.Vendor{
			Feed: func(t *testing.T, n int) []string {
				p.add(fed, n, 1)
				p.mu.Lock()
				defer p.mu.Unlock()
				var ids []string
				for i := fed; i < fed+n; i++ {
					ids = append(ids, eventID(*p.contacts[i]))
				}
				fed += n
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source { return openConformanceSource(t, p, pc) },
		}
	})
}

// openConformanceSource is the one place the conformance test builds a
// source.
func openConformanceSource(t *testing.T, p *portal, pc poller.Config) pipeline.Source {
	var c hubspot.Config
	c.SetDefaults()
	c.Config = pc
	c.Token, c.BaseURL, c.PageSize = pat, p.srv.URL, 5
	c.Objects = []hubspot.Object{{Name: "contacts", Properties: []string{"email"}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := hubspot.New(pipeline.BuildContext{Pipeline: "conf", Logger: slog.New(slog.DiscardHandler)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
