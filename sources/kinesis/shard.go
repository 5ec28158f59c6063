package kinesis

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluicehq/sluice/internal/ackorder"
	"github.com/sluicehq/sluice/internal/handoff"
	"github.com/sluicehq/sluice/pipeline"
)

// shardReader reads one leased shard in order.
type shardReader struct {
	s          *Source
	shard      string
	checkpoint string // the lease's checkpoint when taken
	child      bool   // has parents: starts at its beginning
	ctx        context.Context
	cancel     context.CancelFunc
	tracker    *ackorder.Tracker[string]
	renewed    atomic.Value // time.Time of the last successful renewal
	lost       atomic.Bool  // the lease went to another consumer
	ended      atomic.Bool  // read to its end and checkpointed SHARD_END
	done       atomic.Bool  // run returned
	freed      chan struct{}
	lastFetch  string                 // sequence number of the last record fetched
	saved      atomic.Pointer[string] // the last checkpoint written (or taken with the lease)
}

// stop ends reading after the lease was lost: no checkpoint, no release.
func (r *shardReader) stop() {
	r.lost.Store(true)
	r.cancel()
}

func (r *shardReader) run() {
	defer r.done.Store(true)
	s := r.s
	r.freed = make(chan struct{}, 1)
	r.tracker = ackorder.New(r.checkpoint, r.checkpoint != "")
	r.saved.Store(&r.checkpoint)
	defer s.metrics.behind.DeleteLabelValues(r.shard)
	defer r.startBehindProbe(s.metrics.behind.WithLabelValues(r.shard))()
	iter, err := r.iterator(r.checkpoint)
	for err != nil {
		s.log.Warn("kinesis shard iterator", "shard", r.shard, "err", err)
		if !sleep(r.ctx, time.Second) {
			r.finish()
			return
		}
		iter, err = r.iterator(r.checkpoint)
	}
	lastCheckpoint := time.Now()
	retry := pipeline.NewBackoff(200*time.Millisecond, 10*time.Second)
	for r.ctx.Err() == nil {
		if !r.waitForCapacity() {
			break
		}
		out, err := s.client.GetRecords(r.ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(s.cfg.Poll.Limit))})
		if err != nil {
			if r.ctx.Err() != nil {
				break
			}
			var throttled *types.ProvisionedThroughputExceededException
			var expired *types.ExpiredIteratorException
			switch {
			case errors.As(err, &throttled):
				s.metrics.throttled.Inc()
			case errors.As(err, &expired):
				// Resume after the last record fetched (or the checkpoint):
				// nothing handed out is read twice, nothing is skipped.
				from := r.lastFetch
				if from == "" {
					from = r.checkpoint
				}
				if it, ierr := r.iterator(from); ierr == nil {
					iter = it
					continue
				}
			default:
				s.log.Warn("kinesis GetRecords failed, retrying", "shard", r.shard, "err", err)
			}
			sleep(r.ctx, retry.Next())
			continue
		}
		retry.Reset()
		if len(out.Records) > 0 {
			r.handOver(out.Records)
		}
		if time.Since(lastCheckpoint) >= s.cfg.CheckpointInterval.D() {
			r.saveCheckpoint()
			lastCheckpoint = time.Now()
		}
		if out.NextShardIterator == nil {
			r.endShard()
			return
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 {
			sleep(r.ctx, s.cfg.Poll.IdleWait.D())
		} else {
			// Kinesis allows five GetRecords calls per shard per second.
			sleep(r.ctx, 200*time.Millisecond)
		}
	}
	r.finish()
}

// iterator starts after position, or where the config says for a shard
// without a checkpoint (children of a reshard always at their beginning).
func (r *shardReader) iterator(after string) (*string, error) {
	return r.iteratorAt(r.ctx, after)
}

func (r *shardReader) iteratorAt(ctx context.Context, after string) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(r.s.cfg.Stream), ShardId: aws.String(r.shard)}
	switch {
	case after != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(after)
	case r.child || r.s.cfg.Start == "trim_horizon":
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case r.s.cfg.Start == "latest":
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		ts, _ := time.Parse(time.RFC3339, r.s.cfg.Timestamp)
		in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(ts)
	}
	out, err := r.s.client.GetShardIterator(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.ShardIterator, nil
}

func (r *shardReader) waitForCapacity() bool {
	for r.tracker.InFlight() >= r.s.cfg.MaxInFlightPerShard {
		select {
		case <-r.ctx.Done():
			return false
		case <-r.freed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}

func (r *shardReader) handOver(recs []types.Record) {
	s := r.s
	evs := make([]pipeline.Event, len(recs))
	out := make([]*pipeline.Event, len(recs))
	meta := make([]pipeline.MetaPair, 0, 3*len(recs))
	for i := range recs {
		rec := &recs[i]
		seq := aws.ToString(rec.SequenceNumber)
		ev := &evs[i]
		ev.ID = r.shard + "/" + seq
		ev.Key = []byte(aws.ToString(rec.PartitionKey))
		ev.Payload = rec.Data
		if rec.ApproximateArrivalTimestamp != nil {
			ev.Time = *rec.ApproximateArrivalTimestamp
		}
		start := len(meta)
		meta = append(meta, pipeline.MetaPair{Key: MetaStream, Value: s.cfg.Stream}, pipeline.MetaPair{Key: MetaShard, Value: r.shard}, pipeline.MetaPair{Key: MetaSequence, Value: seq})
		ev.Meta = meta[start:len(meta):len(meta)]
		out[i] = ev
	}
	r.lastFetch = aws.ToString(recs[len(recs)-1].SequenceNumber)
	span := r.tracker.Add(r.lastFetch, len(recs))
	s.metrics.records.Add(float64(len(recs)))
	ack := func(err error) {
		r.tracker.Ack(span, err)
		select {
		case r.freed <- struct{}{}:
		default:
		}
	}
	if !s.batches.Put(r.ctx, handoff.Batch{Events: out, Ack: ack, Stale: r.lost.Load, StaleErr: errLeaseLost}) {
		ack(errLeaseLost)
	}
}

// saveCheckpoint writes the acked position if it moved. A store that does
// not answer leaves the checkpoint where it was: it never moves ahead of
// what is acked, and the next interval tries again.
func (r *shardReader) saveCheckpoint() {
	pos, token, ok := r.tracker.ToCommit()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
	defer cancel()
	owned, err := r.s.store.Checkpoint(ctx, r.shard, r.s.id, pos)
	switch {
	case err != nil:
		r.s.metrics.checkpoints.WithLabelValues("error").Inc()
		r.s.log.Warn("kinesis checkpoint failed; it will be retried", "shard", r.shard, "err", err)
	case !owned:
		r.s.metrics.checkpoints.WithLabelValues("lost").Inc()
		r.stop()
	default:
		r.s.metrics.checkpoints.WithLabelValues("ok").Inc()
		r.tracker.Committed(token)
		r.saved.Store(&pos)
	}
}

// endShard runs when a closed shard is read to its end: once every record
// is acked, it checkpoints SHARD_END so the children may be read.
func (r *shardReader) endShard() {
	for !r.tracker.Settled() {
		if r.tracker.InFlight() == 0 {
			// A batch failed: the pipeline is stopping. Leave the shard
			// open for whoever reads it next.
			r.finish()
			return
		}
		select {
		case <-r.ctx.Done():
			r.finish()
			return
		case <-r.freed:
		case <-time.After(50 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 10*time.Second)
	defer cancel()
	for {
		owned, err := r.s.store.Checkpoint(ctx, r.shard, r.s.id, ShardEnd)
		if err == nil {
			if owned {
				r.ended.Store(true)
				_ = r.s.store.Release(ctx, r.shard, r.s.id)
				r.s.log.Info("kinesis shard read to its end", "shard", r.shard)
			}
			return
		}
		r.s.log.Warn("kinesis SHARD_END checkpoint failed; retrying", "shard", r.shard, "err", err)
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

// finish checkpoints what was acked and releases the lease, unless the
// lease was lost (then neither is ours to do).
func (r *shardReader) finish() {
	if r.lost.Load() {
		return
	}
	r.saveCheckpoint()
	if r.lost.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
	defer cancel()
	_ = r.s.store.Release(ctx, r.shard, r.s.id)
}

// sleep waits d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	return pipeline.Sleep(ctx, d) == nil
}
