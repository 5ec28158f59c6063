package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/kafkagroup"
)

// sample records one Second a second — settled events (the group's
// committed offsets), lag (end minus committed offsets, read from the
// broker), p99 (the consumers' end-to-end histograms) — restarts a
// consumer that exited on its own (recording it), tracks each fault's
// recovery, and returns once the producer and the faults are done and the
// group drained, or with an error when the drain bound passes first.
func (r *chaosRun) sample(ctx context.Context, res *Result, producerDone <-chan error, faultsDone <-chan struct{},
	producedNow func() int64, progress func(context.Context) (streamProgress, error)) error {
	o := r.o
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastCommitted, lag int64
	var drainDeadline time.Time
	faultsOver := false
	where := "no progress read yet"
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-producerDone:
			if err != nil {
				return fmt.Errorf("producer: %w", err)
			}
			r.produced.Store(true)
			producerDone = nil
		case <-faultsDone:
			faultsOver, faultsDone = true, nil
		case err := <-r.fatal:
			return err
		case <-tick.C:
		}
		if drainDeadline.IsZero() && r.produced.Load() && faultsOver {
			drainDeadline = time.Now().Add(o.Drain)
		}
		delta, crashed := r.fleet.sample(ctx)
		if err := r.restartCrashed(crashed); err != nil {
			return err
		}
		pr, err := progress(ctx)
		committed := lastCommitted
		var void *voidRun
		switch {
		case errors.As(err, &void):
			return err
		case err == nil:
			committed, lag, where = pr.Committed, pr.Lag, pr.Where
		default:
			where = "reading the group's positions: " + err.Error()
		}
		s := Second{T: time.Since(r.start).Seconds(), Produced: producedNow(), Consumed: committed,
			Rate: float64(max(0, committed-lastCommitted)), Lag: lag, P99Millis: bucketQuantile(delta, 0.99)}
		lastCommitted = committed
		res.Series = append(res.Series, s)
		r.trackRecovery(s)
		progressBar(o.Progress, s, int64(o.Rate*o.Duration.Seconds()), " committed")
		if drainDeadline.IsZero() {
			continue
		}
		if err == nil && pr.Drained {
			return nil
		}
		if time.Now().After(drainDeadline) {
			return fmt.Errorf("the group did not drain within the %s drain after the load and the faults ended (%s)", o.Drain, where)
		}
	}
}

// restartCrashed records a consumer that exited without being asked to and
// starts it again, so the run goes on; the timeline shows it. More crashes
// than consumers is no fault of the schedule (a config the consumers
// cannot run, a store they cannot reach): the run ends with the last
// crashed process's stderr rather than restarting it for ever.
func (r *chaosRun) restartCrashed(crashed []*member) error {
	for _, m := range crashed {
		rec := &FaultRecord{Class: "crash", At: time.Since(r.start).Seconds(),
			Target: fmt.Sprintf("consumer %d (pid %d) exited on its own: %v", m.slot, m.cmd.Process.Pid, m.waitErr)}
		r.crashes++
		if r.crashes > r.o.Consumers {
			rec.Err = "not restarted: too many crashes"
		} else if n, err := r.fleet.start(m.slot); err != nil {
			rec.Err = err.Error()
		} else {
			rec.Target += fmt.Sprintf("; restarted as pid %d", n.cmd.Process.Pid)
		}
		r.mu.Lock()
		r.faults = append(r.faults, rec)
		r.mu.Unlock()
		fmt.Fprintf(r.o.Progress, "\nchaos: %6.1fs %s\n", rec.At, rec.Target)
		if r.crashes > r.o.Consumers {
			return fmt.Errorf("%d consumer processes exited on their own, more than the %d consumers: the last one (consumer %d, pid %d) said:\n%s",
				r.crashes, r.o.Consumers, m.slot, m.cmd.Process.Pid, m.lastLog())
		}
	}
	return nil
}

// trackRecovery marks, per fault over by now, when the lag rose above one
// second of traffic and when it came back under it.
func (r *chaosRun) trackRecovery(s Second) {
	threshold := int64(r.o.Rate)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.faults {
		if f.resolved || s.T < f.At {
			continue
		}
		switch {
		case s.Lag > threshold:
			f.exceeded = true
		case f.exceeded && !f.active:
			f.RecoveredAfter, f.resolved = s.T-f.At, true
		}
	}
}

// topicLost reports how the topic shrank since the last read — fewer
// partitions, or an end offset lower than one seen before — and records
// this read's end offsets in ends. "" when it did not.
func topicLost(ends map[int]int64, pr kafkagroup.Progress) string {
	if len(ends) > 0 && len(pr.Partitions) < len(ends) {
		return fmt.Sprintf("%d partitions, then %d", len(ends), len(pr.Partitions))
	}
	for _, p := range pr.Partitions {
		if seen, ok := ends[p.ID]; ok && p.End < seen {
			return fmt.Sprintf("partition %d ended at %d, then at %d", p.ID, seen, p.End)
		}
		ends[p.ID] = max(ends[p.ID], p.End)
	}
	return ""
}
