package kinesis

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
)

// startBehindProbe sets the shard's behind-latest gauge every lag_interval
// from a read of its own, independent of fetching: fetching stops while the
// pipeline is behind (a store down fills max_in_flight_per_shard), and the
// gauge must grow exactly then. The probe takes an iterator after the last
// checkpoint written and reads one record: the gauge is how long ago that
// record, the oldest one not yet checkpointed, arrived (or MillisBehindLatest
// of that read, if larger); with nothing after the checkpoint it is
// MillisBehindLatest (0 when caught up). So, like the Kafka lag, it counts
// what was read but is not yet stored. It costs one GetShardIterator and one
// GetRecords call per shard per lag_interval. The returned func stops it.
func (r *shardReader) startBehindProbe(g prometheus.Gauge) func() {
	ctx, cancel := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(r.s.cfg.LagInterval.D())
		defer tick.Stop()
		for {
			if v, ok := r.probeBehind(ctx); ok {
				g.Set(v)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// probeBehind returns the seconds behind latest of the first record after
// the last checkpoint written; false when the stream did not answer (the
// gauge keeps its value; fetching logs the failure).
func (r *shardReader) probeBehind(ctx context.Context) (float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, max(r.s.cfg.LagInterval.D(), 5*time.Second))
	defer cancel()
	from := r.saved.Load()
	if *from == "" && !r.child && r.s.cfg.Start == "latest" {
		// Nothing checkpointed and reading starts at the tip: nothing
		// is behind that anyone asked for.
		return 0, true
	}
	iter, err := r.iteratorAt(ctx, *from)
	if err != nil {
		return 0, false
	}
	out, err := r.s.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1)})
	if err != nil {
		return 0, false
	}
	behind := time.Duration(aws.ToInt64(out.MillisBehindLatest)) * time.Millisecond
	if len(out.Records) > 0 && out.Records[0].ApproximateArrivalTimestamp != nil {
		behind = max(behind, time.Since(*out.Records[0].ApproximateArrivalTimestamp))
	}
	return max(behind, 0).Seconds(), true
}
