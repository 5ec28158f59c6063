package salesforce_test

import (
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
		return pollertest.Vendor{
			Feed: func(t *testing.T, from, n int) []string {
				o.mu.Lock()
				defer o.mu.Unlock()
				var ids []string
				for i := from; i < from+n; i++ {
					st := base.Add(time.Duration(i) * time.Second)
					c := &contact{ID: sfID("003", i), Account: sfID("001", i%4), Last: "Lovelace" + strconv.Itoa(i), Created: st, Stamp: st}
					o.contacts[c.ID] = c
					ids = append(ids, eventID(*c))
				}
				return ids
			},
			Open: func(t *testing.T, pc poller.Config) pipeline.Source {
				return pollertest.Build(t, salesforce.New, func(c *salesforce.Config) {
					c.Config = pc
					c.InstanceURL = o.srv.URL
					c.Objects = []salesforce.Object{{Name: "Contact", Fields: []string{"Id", "AccountId", "LastName", "CreatedDate", "LastModifiedDate"}}}
					c.Auth.ClientID, c.Auth.ClientSecret = "3MVG9-consumer-key", "consumer-secret"
				})
			},
		}
	})
}
