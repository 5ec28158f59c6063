package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAbandoned is what a source's ack receives for a batch the pipeline
// stopped before writing: the shutdown deadline passed, or another batch
// failed in a way that stopped the pipeline. The source must redeliver it.
var ErrAbandoned = errors.New("pipeline stopped before the batch was written")

// closeGrace is what closing the components may take past
// shutdown_timeout once a shutdown began: a last commit, a flush.
const closeGrace = time.Second

// tracker counts down the events of one source batch across the lanes it
// was split into, and acks it exactly once when the last one settles.
type tracker struct {
	remaining atomic.Int64
	failed    atomic.Pointer[error]
	ack       AckFunc
	settled   func(err error)
}

func (t *tracker) done(n int, err error) {
	if err != nil {
		t.failed.CompareAndSwap(nil, &err)
	}
	if t.remaining.Add(int64(-n)) == 0 {
		var ackErr error
		if e := t.failed.Load(); e != nil {
			ackErr = *e
		}
		t.settled(ackErr)
		if t.ack != nil {
			t.ack(ackErr)
		}
	}
}

// share is how many events of a batch belong to one source batch.
type share struct {
	t *tracker
	n int
}

type batch struct {
	events  []*Event
	shares  []share
	bytes   int
	started time.Time
	passed  []passedOn // what each Settler transform passed on
	// delivered is what process wrote to the sinks or dead-lettered: the
	// events, not those a transform dropped on purpose (filtered,
	// deduplicated), whose end-to-end latency is measured.
	delivered []*Event
}

type passedOn struct {
	settler Settler
	events  []*Event
}

func (b *batch) add(ev *Event, t *tracker) {
	if len(b.events) == 0 {
		b.started = time.Now()
	}
	b.events = append(b.events, ev)
	b.bytes += ev.Size()
	if n := len(b.shares); n > 0 && b.shares[n-1].t == t {
		b.shares[n-1].n++
	} else {
		b.shares = append(b.shares, share{t: t, n: 1})
	}
}

func (b *batch) settle(err error) {
	for _, p := range b.passed {
		p.settler.Settle(p.events, err)
	}
	for _, s := range b.shares {
		s.t.done(s.n, err)
	}
}

type readResult struct {
	events []*Event
	ack    AckFunc
}

// run is the state of one Run call.
type run struct {
	p          *Pipeline
	workCtx    context.Context
	cancelRead context.CancelFunc
	cancelWork context.CancelCauseFunc
	fatalOnce  sync.Once
	fatalErr   error
	seed       maphash.Seed
	sem        chan struct{}
	lanes      []chan *batch
	nextLane   int
}

// fatal stops the pipeline for good: nothing more is read, in-flight work
// is abandoned unacked, and Run returns err.
func (r *run) fatal(err error) {
	r.fatalOnce.Do(func() {
		r.fatalErr = err
		r.p.log.Error("pipeline stopping", "err", err)
		r.cancelRead()
		r.cancelWork(err)
	})
}

// Run processes events until ctx is canceled (shutdown), the source is
// exhausted, or a failure stops the pipeline, and then closes every
// component. Shutdown is graceful: reading stops at once, batches already
// read get delivery.shutdown_timeout to finish, and whatever is left is
// acked with ErrAbandoned so the source redelivers it. Run returns nil
// after a shutdown or an exhausted source, and the failure otherwise.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.start(ctx); err != nil {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Delivery.ShutdownTimeout.D())
		defer cancel()
		return errors.Join(err, p.closeAll(closeCtx))
	}
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	r := &run{
		p: p, workCtx: workCtx, cancelRead: cancelRead, cancelWork: cancelWork,
		seed: maphash.MakeSeed(), sem: make(chan struct{}, p.cfg.Delivery.MaxInFlight),
		lanes: make([]chan *batch, p.cfg.Delivery.Lanes),
	}
	p.lastWrite.Store(time.Now().UnixNano())
	p.ready.Store(true)
	defer p.ready.Store(false)

	// On shutdown, give in-flight work its deadline, then abandon it. The
	// components' Close share the same deadline (plus closeGrace), so the
	// whole shutdown takes at most shutdown_timeout + closeGrace even with a
	// store down.
	var shutdownBegan atomic.Int64
	stopDeadline := context.AfterFunc(ctx, func() {
		shutdownBegan.Store(time.Now().UnixNano())
		p.log.Info("shutting down: stopped reading, finishing in-flight batches", "deadline", p.cfg.Delivery.ShutdownTimeout.D())
		t := time.AfterFunc(p.cfg.Delivery.ShutdownTimeout.D(), func() {
			p.log.Warn("shutdown deadline passed: abandoning in-flight batches unacked")
			cancelWork(ErrAbandoned)
		})
		context.AfterFunc(workCtx, func() { t.Stop() })
	})
	defer stopDeadline()

	reads := make(chan readResult, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.read(readCtx, reads)
	}()
	var lanes sync.WaitGroup
	for i := range r.lanes {
		r.lanes[i] = make(chan *batch, p.cfg.Delivery.MaxInFlight)
		lanes.Add(1)
		go func(in <-chan *batch) {
			defer lanes.Done()
			r.work(in)
		}(r.lanes[i])
	}
	r.dispatch(reads)
	lanes.Wait()
	wg.Wait()
	cancelWork(nil)

	closeDeadline := time.Now().Add(p.cfg.Delivery.ShutdownTimeout.D())
	if began := shutdownBegan.Load(); began != 0 {
		closeDeadline = time.Unix(0, began).Add(p.cfg.Delivery.ShutdownTimeout.D() + closeGrace)
	}
	closeCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), closeDeadline)
	defer cancel()
	if err := p.closeAll(closeCtx); err != nil {
		p.log.Error("closing components", "err", err)
		if r.fatalErr == nil {
			return err
		}
	}
	return r.fatalErr
}

// read pulls batches from the source until it is exhausted or readCtx ends,
// retrying failed reads with backoff. It closes out when it stops.
func (r *run) read(ctx context.Context, out chan<- readResult) {
	defer close(out)
	p := r.p
	retry := newRetrier(p.cfg.Retry)
	for {
		start := time.Now()
		events, ack, err := p.source.c.Read(ctx)
		p.source.m.seconds.Add(time.Since(start).Seconds())
		if len(events) > 0 || (err == nil && ack != nil) {
			p.source.m.out.Add(float64(len(events)))
			p.tapped(p.source.label, TapAfter, events)
			out <- readResult{events: events, ack: ack}
		}
		switch {
		case err == nil:
			retry = newRetrier(p.cfg.Retry)
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			p.log.Info("source exhausted", "component", p.source.label)
			return
		case IsPermanent(err):
			r.fatal(fmt.Errorf("read %s: %w", p.source.label, err))
			return
		}
		p.metrics.sourceErrors.Inc()
		p.source.m.retried(err, 1)
		p.log.Warn("source read failed, retrying", "component", p.source.label, "err", LogSafe(err))
		if !retry.failed() {
			r.fatal(fmt.Errorf("read %s: giving up after %d attempts: %w", p.source.label, p.cfg.Retry.MaxAttempts, err))
			return
		}
		if retry.wait(ctx) != nil {
			return
		}
	}
}

// dispatch splits source batches into per-lane batches by partition key
// and hands each lane its batch when it is full or has waited max_wait.
// It drains reads to the end, so every batch read is acked.
func (r *run) dispatch(reads <-chan readResult) {
	p := r.p
	acc := make([]*batch, len(r.lanes))
	maxWait := p.cfg.Batch.MaxWait.D()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	arm := func() {
		var oldest time.Time
		for _, b := range acc {
			if b != nil && (oldest.IsZero() || b.started.Before(oldest)) {
				oldest = b.started
			}
		}
		if !oldest.IsZero() && !armed {
			timer.Reset(time.Until(oldest.Add(maxWait)))
			armed = true
		}
	}
	flush := func(i int) {
		b := acc[i]
		acc[i] = nil
		if i == r.nextLane {
			r.nextLane = (r.nextLane + 1) % len(r.lanes) // keyless events fill the next lane's batch
		}
		r.send(i, b)
	}
	defer func() {
		for i := range acc {
			if acc[i] != nil {
				flush(i)
			}
		}
		for _, l := range r.lanes {
			close(l)
		}
	}()
	for {
		select {
		case rr, ok := <-reads:
			if !ok {
				return
			}
			if len(rr.events) == 0 {
				if rr.ack != nil {
					rr.ack(nil)
				}
				continue
			}
			t := &tracker{ack: rr.ack, settled: r.settled}
			t.remaining.Store(int64(len(rr.events)))
			for _, ev := range rr.events {
				i := r.lane(ev)
				if acc[i] == nil {
					acc[i] = &batch{events: make([]*Event, 0, min(p.cfg.Batch.MaxEvents, 2*len(rr.events)/len(r.lanes)+8))}
				}
				acc[i].add(ev, t)
				if len(acc[i].events) >= p.cfg.Batch.MaxEvents || acc[i].bytes >= int(p.cfg.Batch.MaxBytes) {
					flush(i)
				}
			}
			arm()
		case <-timer.C:
			armed = false
			now := time.Now()
			for i, b := range acc {
				if b != nil && now.Sub(b.started) >= maxWait {
					flush(i)
				}
			}
			arm()
		}
	}
}

func (r *run) settled(err error) {
	if err != nil {
		r.p.metrics.ackFailed.Inc()
	} else {
		r.p.metrics.acked.Inc()
	}
}

// lane picks the lane of an event: by key, so a key's events stay in
// order. Keyless events have no order to keep: they fill one lane's batch
// until it is flushed, then the next lane's (round robin by batch, not by
// event: a source batch is not spread thin over every lane, so batches
// fill and leave at once and a batch's events are freed together).
func (r *run) lane(ev *Event) int {
	if len(ev.Key) == 0 {
		return r.nextLane
	}
	return int(maphash.Bytes(r.seed, ev.Key) % uint64(len(r.lanes)))
}

// send waits for an in-flight slot (backpressure) and queues b on lane i.
func (r *run) send(i int, b *batch) {
	select {
	case r.sem <- struct{}{}:
	case <-r.workCtx.Done():
		r.p.stats.abandoned.Add(int64(len(b.events)))
		b.settle(ErrAbandoned)
		return
	}
	r.p.metrics.inFlight.Inc()
	r.p.waiting.Add(1)
	r.p.metrics.batchEvents.Observe(float64(len(b.events)))
	r.lanes[i] <- b
}

// work processes one lane's batches in order.
func (r *run) work(in <-chan *batch) {
	for b := range in {
		var err error
		var st Stats
		if r.workCtx.Err() != nil {
			err = ErrAbandoned
		} else if st, err = r.p.process(r.workCtx, b); err != nil {
			if r.workCtx.Err() != nil {
				err = fmt.Errorf("%w: %w", ErrAbandoned, err)
			} else {
				r.fatal(err)
			}
		}
		if err == nil {
			r.p.observeLatency(b)
			r.p.stats.add(st)
		} else {
			r.p.stats.abandoned.Add(int64(len(b.events)))
		}
		// The observer sees the events before the settle acks their
		// source batches: after an ack a source may reuse them.
		if r.p.observer != nil {
			if err == nil {
				r.p.observer(b.delivered, nil)
			} else {
				r.p.observer(b.events, err)
			}
		}
		b.settle(err)
		r.p.metrics.inFlight.Dec()
		r.p.waiting.Add(-1)
		<-r.sem
	}
}

// observeLatency measures the events delivered (written or dead-lettered):
// one a transform dropped reached no store, and its time may be far older
// than its delivery (a redelivered duplicate carries its original's).
func (p *Pipeline) observeLatency(b *batch) {
	p.metrics.endToEnd.observeBatch(time.Now(), b.delivered)
}
