package mapping

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// benchBody is a ~1 KB CRM-like event, the shape of bench/'s
// BenchmarkEngineFile workload.
const benchBody = `{"id":"evt-000012345","time":"2026-11-23T12:00:12.345Z","type":"contact.updated","source":"crm",` +
	`"email":"Ada.Lovelace345@Example.COM","name":"Ada Lovelace","phone":"+1-555-2345",` +
	`"account":{"id":"acc-012345","name":"Account 12345","plan":"pro","seats":96,"mrr":3345.45,"active":false},` +
	`"address":{"street":"346 Market Street","city":"San Francisco","region":"CA","postal_code":"94345","country":"US"},` +
	`"tags":["customer","tier-1","region-west","newsletter"],"scores":[45,15,85],` +
	`"utm":{"source":"google","medium":"cpc","campaign":"winter-9","term":"stream processing","content":"ad-24"},` +
	`"consent":{"email":true,"sms":false,"updated_at":"2026-11-23T11:00:12Z"},` +
	`"notes":"Met at the conference; interested in the enterprise plan. Follow up after the \"Q1\" budget review, cc the account owner and the solutions engineer assigned to the region.",` +
	`"owner":{"id":"usr-0045","email":"owner45@acme.io","team":"sales-west"},"version":6,"deleted":false,"extra":null}`

// BenchmarkMapWorkload: the workload's map step (lowercase email, add
// email_domain and processed_at) over batches of 500; one op is one event.
func BenchmarkMapWorkload(b *testing.B) {
	m, err := New(pipelinetest.BuildContext(), onePassConfigs[0])
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	events := make([]pipeline.Event, batch)
	in := make([]*pipeline.Event, batch)
	payload := []byte(benchBody)
	b.ReportAllocs()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for i := range n {
			events[i] = pipeline.Event{ID: "e", Payload: payload, Body: payload}
			in[i] = &events[i]
		}
		if _, err := m.Apply(context.Background(), in[:n]); err != nil {
			b.Fatal(err)
		}
	}
}
