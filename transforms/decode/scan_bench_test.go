package decode

import (
	"context"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// benchPayload is a ~1 KB CRM-like event, the shape of bench/'s
// BenchmarkEngineFile workload.
var benchPayload = []byte(`{"id":"evt-000012345","time":"2026-11-23T12:00:12.345Z","type":"contact.updated","source":"crm",` +
	`"email":"Ada.Lovelace345@Example.COM","name":"Ada Lovelace","phone":"+1-555-2345",` +
	`"account":{"id":"acc-012345","name":"Account 12345","plan":"pro","seats":96,"mrr":3345.45,"active":false},` +
	`"address":{"street":"346 Market Street","city":"San Francisco","region":"CA","postal_code":"94345","country":"US"},` +
	`"tags":["customer","tier-1","region-west","newsletter"],"scores":[45,15,85],` +
	`"utm":{"source":"google","medium":"cpc","campaign":"winter-9","term":"stream processing","content":"ad-24"},` +
	`"consent":{"email":true,"sms":false,"updated_at":"2026-11-23T11:00:12Z"},` +
	`"notes":"Met at the conference; interested in the enterprise plan. Follow up after the \"Q1\" budget review, cc the account owner and the solutions engineer assigned to the region.",` +
	`"owner":{"id":"usr-0045","email":"owner45@acme.io","team":"sales-west"},"version":6,"deleted":false,"extra":null}`)

// BenchmarkDecodeJSON: one op is one ~1 KB payload decoded with id and
// time; "gjson" is the former validation plus lookups, for comparison.
func BenchmarkDecodeJSON(b *testing.B) {
	b.Run("scan", func(b *testing.B) {
		d := newJSON(b, Config{Format: "json", ID: "id", Time: "time"})
		ev := &pipeline.Event{ID: "evt-000012345"}
		batch := []*pipeline.Event{ev}
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		for range b.N {
			ev.Payload = benchPayload
			if _, err := d.Apply(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gjson", func(b *testing.B) {
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		for range b.N {
			if !gjson.ValidBytes(benchPayload) || !gjson.GetBytes(benchPayload, "id").Exists() || !gjson.GetBytes(benchPayload, "time").Exists() {
				b.Fatal("invalid")
			}
		}
	})
}

func TestBenchPayloadShape(t *testing.T) {
	if n := len(benchPayload); n < 900 || n > 1100 || !gjson.ValidBytes(benchPayload) || strings.Count(string(benchPayload), `"id"`) < 1 {
		t.Fatalf("bench payload is %d bytes or invalid", n)
	}
}
