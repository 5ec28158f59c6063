package salesforce_test

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/salesforce"
)

// TestConformance runs the source table against the org stand-in: contacts
// one second apart (its add makes two per second), ten per page, so a
// feed spans several batches.
func TestConformance(t *testing.T) {
	pollertest.TestConformance(t, func(t *testing.T) pollertest.Vendor {
		o := newOrg(t)
		fed := 0
		return pollertest.Vendor{
			Feed: func(t *testing.T, n int) []string {
				o.mu.Lock()
				defer o.mu.Unlock()
				var ids []string
				for i := fed; i < fed+n; i++ {
					st := base.Add(time.Duration(i) * time.Second)
					c := &contact{ID: sfID("003", i), Account: sfID("001", i%4), Last: "Lovelace" + strconv.Itoa(i), Created: st, Stamp: st}
					o.contacts[c.ID] = c
					ids = append(ids, eventID(*c))
				}
				fed += n
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source { return openConformanceSource(t, o, pc) },
		}
	})
}

// openConformanceSource is the one place the conformance test builds a
// source.
func openConformanceSource(t *testing.T, o *org, pc poller.Config) pipeline.Source {
	var c salesforce.Config
	c.SetDefaults()
	c.Config = pc
	c.InstanceURL = o.srv.URL
	c.Objects = []salesforce.Object{{Name: "Contact", Fields: []string{"Id", "AccountId", "LastName", "CreatedDate", "LastModifiedDate"}}}
	c.Auth.ClientID, c.Auth.ClientSecret = "3MVG9-consumer-key", "consumer-secret"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := salesforce.New(pipeline.BuildContext{Pipeline: "conf", Logger: slog.New(slog.DiscardHandler)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
