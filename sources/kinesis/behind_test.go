package kinesis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// TestBehindLatestGrowsWhileReadingIsHeldBack: with the sink stopped
// (nothing handed out is acked, so fetching stops at
// max_in_flight_per_shard), the behind-latest gauge still grows, from the
// probe's own read of the stream; once everything is acked and
// checkpointed it falls back to 0.
func TestBehindLatestGrowsWhileReadingIsHeldBack(t *testing.T) {
	e := setup(t, 1)
	e.put(t, 0, 20, 4)
	reg := prometheus.NewRegistry()
	var c kinesissource.Config
	c.SetDefaults()
	c.Stream, c.Endpoint, c.Credentials, c.ConsumerGroup = e.stream, e.endpoint, creds, "behind"
	c.Checkpoint.MongoDB = &kinesissource.MongoCheckpoint{URI: e.mongo, Database: e.db}
	c.Poll.Limit, c.Poll.IdleWait = 5, pipeline.Duration(50*time.Millisecond)
	c.MaxInFlightPerShard = 5
	c.ShardSync, c.Lease.RenewEvery = pipeline.Duration(200*time.Millisecond), pipeline.Duration(200*time.Millisecond)
	c.CheckpointInterval = pipeline.Duration(100 * time.Millisecond)
	c.LagInterval = pipeline.Duration(100 * time.Millisecond)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := kinesissource.New(pipeline.NewBuildContext("test", "test", nil, reg), c)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.StartSource(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound()) // hang-catcher
	defer cancel()
	// Take one batch and never ack it: the sink is stopped.
	held, heldAck, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fetched := func() float64 { return pipelinetest.MetricSum(t, reg, "sluice_kinesis_records_total", nil) }
	behind := func() float64 { return pipelinetest.MetricSum(t, reg, "sluice_kinesis_behind_latest_seconds", nil) }
	state := func() string { return fmt.Sprintf("behind %.3fs, fetched %v", behind(), fetched()) }
	testwait.For(t, "the gauge to report the held batch", func() bool { return behind() > 0 }, state)
	first := behind()
	e.put(t, 20, 20, 4)
	testwait.For(t, "the gauge to grow by a second while reading is held back", func() bool { return behind() >= first+1 }, state)
	// Reading stops once max_in_flight_per_shard records are unacked: at
	// most one GetRecords past it, far from the 40 in the stream.
	if n, most := fetched(), c.MaxInFlightPerShard-1+c.Poll.Limit; n > float64(most) {
		t.Fatalf("fetched %v records with %d held unacked; at most %d may be: reading was not held back", n, len(held), most)
	}
	// Ack everything: the checkpoint reaches the end and the gauge 0.
	ackAll := func() {
		heldAck(nil)
		for got := 0; got < 40-len(held); {
			evs, ack, err := src.Read(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			got += len(evs)
			ack(nil)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); ackAll() }()
	testwait.For(t, "the gauge to fall to 0 once all is checkpointed", func() bool { return behind() == 0 }, state)
	<-done
}
