// Package kinesis is the Kinesis source: consumers of one group share a
// stream's shards through leases in MongoDB, checkpoint only what is acked,
// and read a resharded stream's parents to their end before its children.
package kinesis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/internal/handoff"
	"github.com/sluicehq/sluice/pipeline"
)

// Meta keys the source sets on every event.
const (
	MetaStream   = "kinesis.stream"
	MetaShard    = "kinesis.shard"
	MetaSequence = "kinesis.sequence"
)

// Register adds the kinesis source to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSource(r, "kinesis", "a Kinesis stream shared by a consumer group through MongoDB leases", func(bc pipeline.BuildContext, c *Config) (pipeline.Source, error) {
		return New(bc, *c)
	})
}

// Source is one consumer of a group.
type Source struct {
	cfg     Config
	id      string // this consumer's lease owner name
	log     *slog.Logger
	client  *kinesis.Client
	store   LeaseStore
	closer  func(context.Context) error
	metrics *metrics

	batches *handoff.Queue
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	readers map[string]*shardReader // shard id → running reader
	ready   pipeline.Readiness
}

// Option adjusts a Source beyond its YAML.
type Option func(*buildOptions)

type buildOptions struct{ store LeaseStore }

// WithLeaseStore builds the source on store instead of the MongoDB lease
// store of checkpoint.mongodb. The source does not close a store given
// this way; its owner does.
func WithLeaseStore(store LeaseStore) Option { return func(o *buildOptions) { o.store = store } }

// New builds a source; nothing is read until Start. Its leases live in the
// MongoDB lease store of checkpoint.mongodb unless WithLeaseStore gives
// another.
func New(bc pipeline.BuildContext, c Config, opts ...Option) (*Source, error) {
	var o buildOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.store != nil {
		return newWithStore(bc, c, o.store)
	}
	store, err := OpenMongoLeases(*c.Checkpoint.MongoDB, c.ConsumerGroup, c.Stream)
	if err != nil {
		return nil, fmt.Errorf("kinesis source: %w", err)
	}
	s, err := newWithStore(bc, c, store)
	if err != nil {
		_ = store.Close(context.Background())
		return nil, err
	}
	s.closer = store.Close
	return s, nil
}

func newWithStore(bc pipeline.BuildContext, c Config, store LeaseStore) (*Source, error) {
	log := bc.Logger
	client, err := awskinesis.Client(context.Background(), c.Region, c.Endpoint, c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("kinesis source: %w", err)
	}
	m, err := newMetrics(bc.Metrics)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Source{
		cfg: c, id: host + "-" + hex.EncodeToString(b[:]), log: log, client: client, store: store, metrics: m,
		batches: handoff.New(4), readers: map[string]*shardReader{},
	}
	notYet := errors.New("no shard leases taken yet")
	s.ready.Set(notYet)
	return s, nil
}

// Start begins syncing shards and taking leases in the background.
func (s *Source) Start(context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.coordinate()
	}()
	return nil
}

// coordinate syncs shards, renews leases and balances shards until Close.
func (s *Source) coordinate() {
	tick := time.NewTicker(s.cfg.Lease.RenewEvery.D())
	defer tick.Stop()
	var lastSync time.Time
	for {
		if time.Since(lastSync) >= s.cfg.ShardSync.D() || s.wantsSync() {
			if err := s.syncShards(); err != nil {
				s.setNotReady(err)
			} else {
				lastSync = time.Now()
			}
		}
		if err := s.balance(); err != nil {
			s.setNotReady(err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Source) setNotReady(err error) {
	s.log.Warn("kinesis source", "err", err)
	s.ready.Set(err)
}

// wantsSync is true after a shard ended: its children must be discovered.
func (s *Source) wantsSync() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.readers {
		if r.ended.Load() {
			return true
		}
	}
	return false
}

func (s *Source) syncShards() error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	var shards []Lease
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.cfg.Stream)}
	for {
		out, err := s.client.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("list shards of %s: %w", s.cfg.Stream, err)
		}
		for _, sh := range out.Shards {
			l := Lease{Shard: aws.ToString(sh.ShardId)}
			for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if p != nil {
					l.Parents = append(l.Parents, *p)
				}
			}
			shards = append(shards, l)
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	return s.store.Ensure(ctx, shards)
}

// balance renews held leases, drops lost ones, and takes this consumer's
// share of the shards that may be read: free or expired leases first, then,
// with lease.steal, one lease of the busiest consumer above its share.
func (s *Source) balance() error {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	now := time.Now()
	until := now.Add(s.cfg.Lease.Duration.D())
	s.renewHeld(ctx, until)

	leases, err := s.store.List(ctx)
	if err != nil {
		return err
	}
	s.ready.Set(nil)
	eligible := readableShards(leases)
	s.metrics.eligible.Set(float64(len(eligible)))
	owners := map[string]int{s.id: 0}
	for _, l := range eligible {
		if !l.Expired(now) {
			owners[l.Owner]++
		}
	}
	s.mu.Lock()
	mine := len(s.readers)
	s.mu.Unlock()
	target := int(math.Ceil(float64(len(eligible)) / float64(len(owners))))
	sort.Slice(eligible, func(i, j int) bool { return eligible[i].Shard < eligible[j].Shard })
	mine = s.takeFree(ctx, eligible, mine, target, now, until)
	if s.cfg.Lease.Steal && mine < target {
		s.stealOne(ctx, eligible, owners, target, now, until)
	}
	s.mu.Lock()
	s.metrics.owned.Set(float64(len(s.readers)))
	s.mu.Unlock()
	return nil
}

// renewHeld forgets readers that returned, renews the leases of the
// others until until, and stops a reader whose lease went to another
// consumer or could have expired while the store did not answer.
func (s *Source) renewHeld(ctx context.Context, until time.Time) {
	s.mu.Lock()
	for shard, r := range s.readers {
		if r.done.Load() {
			delete(s.readers, shard)
		}
	}
	held := make([]*shardReader, 0, len(s.readers))
	for _, r := range s.readers {
		held = append(held, r)
	}
	s.mu.Unlock()
	for _, r := range held {
		ok, err := s.store.Renew(ctx, r.shard, s.id, until)
		if err != nil {
			// The store is unreachable: keep reading (checkpoints wait),
			// and stop before the lease could have expired for others.
			if time.Now().After(r.renewed.Load().(time.Time).Add(s.cfg.Lease.Duration.D() - s.cfg.Lease.RenewEvery.D())) {
				s.log.Warn("kinesis lease not renewed in time; stopping the shard", "shard", r.shard, "err", err)
				r.stop()
			}
			continue
		}
		if !ok {
			s.log.Info("kinesis lease taken by another consumer", "shard", r.shard)
			r.stop()
			continue
		}
		r.renewed.Store(time.Now())
	}
}

// readableShards are the leases whose shard may be read: not read to its
// end, and every parent read to its end (or gone from the stream and the
// table).
func readableShards(leases []Lease) []Lease {
	byShard := make(map[string]Lease, len(leases))
	for _, l := range leases {
		byShard[l.Shard] = l
	}
	var eligible []Lease
	for _, l := range leases {
		if l.Checkpoint == ShardEnd {
			continue
		}
		ready := true
		for _, p := range l.Parents {
			if pl, ok := byShard[p]; ok && pl.Checkpoint != ShardEnd {
				ready = false
			}
		}
		if ready {
			eligible = append(eligible, l)
		}
	}
	return eligible
}

// takeFree acquires free or expired leases of eligible (sorted) until this
// consumer holds target shards, and returns how many it holds.
func (s *Source) takeFree(ctx context.Context, eligible []Lease, mine, target int, now, until time.Time) int {
	for _, l := range eligible {
		if mine >= target {
			break
		}
		if !l.Expired(now) || s.running(l.Shard) {
			continue
		}
		if ok, err := s.store.Acquire(ctx, l.Shard, s.id, "", until); err == nil && ok {
			s.startReader(l)
			mine++
		}
	}
	return mine
}

// stealOne takes one shard from the busiest consumer above its share; one
// per round, so consumers converge without thrashing.
func (s *Source) stealOne(ctx context.Context, eligible []Lease, owners map[string]int, target int, now, until time.Time) {
	busiest, most := "", target
	for o, n := range owners {
		if o != s.id && n > most {
			busiest, most = o, n
		}
	}
	if busiest == "" {
		return
	}
	for _, l := range eligible {
		if l.Owner == busiest && !l.Expired(now) {
			if ok, err := s.store.Acquire(ctx, l.Shard, s.id, busiest, until); err == nil && ok {
				s.log.Info("kinesis lease stolen to balance shards", "shard", l.Shard, "from", busiest)
				s.startReader(l)
			}
			return
		}
	}
}

func (s *Source) running(shard string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.readers[shard]
	return ok
}

func (s *Source) startReader(l Lease) {
	ctx, cancel := context.WithCancel(s.ctx)
	r := &shardReader{s: s, shard: l.Shard, checkpoint: l.Checkpoint, child: len(l.Parents) > 0, ctx: ctx, cancel: cancel}
	r.renewed.Store(time.Now())
	s.mu.Lock()
	s.readers[l.Shard] = r
	s.mu.Unlock()
	s.log.Info("kinesis shard leased", "shard", l.Shard, "checkpoint", l.Checkpoint)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.run()
	}()
}

// Read returns the next batch of one shard's records. A batch whose lease
// was lost while it waited is acked with an error and left to the new owner.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	return s.batches.Read(ctx)
}

// Ready reports whether the lease store answers.
func (s *Source) Ready() error { return s.ready.Ready() }

// Close stops every shard reader after a last checkpoint and releases its
// lease, so another consumer takes over at once rather than after expiry.
func (s *Source) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		// Batches queued but never read are acked now, not left waiting.
		s.batches.Close(pipeline.ErrAbandoned)
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("kinesis source: stopping shard readers: %w", ctx.Err())
		}
	}
	if s.closer != nil {
		return s.closer(ctx)
	}
	return nil
}
