package bench

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
)

// Audit compares what was sent with what the stores hold, read back from
// the stores themselves.
type Audit struct {
	Sent         int64        `json:"sent"`
	Unique       int64        `json:"unique"`
	Poison       int64        `json:"poison"`
	Stores       []StoreCount `json:"stores"`
	DeadLettered int64        `json:"dead_lettered"`
	Lost         int64        `json:"lost"`
	Duplicated   int64        `json:"duplicated"`
	// Order is the Kinesis chaos run's order and checkpoint audit.
	Order *OrderAudit `json:"kinesis,omitempty"`
}

// StoreCount is one sink's side of the audit.
type StoreCount struct {
	Sink       string `json:"sink"`
	Stored     int64  `json:"stored"`
	Lost       int64  `json:"lost"`
	Duplicated int64  `json:"duplicated"`
}

// Line is the audit's closing line.
func (a Audit) Line() string {
	var stores []string
	for _, s := range a.Stores {
		stores = append(stores, fmt.Sprintf("%s %d", s.Sink, s.Stored))
	}
	return fmt.Sprintf("audit: sent %d, unique %d, stored: %s, dead-lettered %d, lost %d, duplicated %d",
		a.Sent, a.Unique, strings.Join(stores, ", "), a.DeadLettered, a.Lost, a.Duplicated)
}

// OK reports whether nothing was lost or duplicated.
// On Kinesis, it also needs every key in order across shard splits and no
// checkpoint moved back.
func (a Audit) OK() bool { return a.Lost == 0 && a.Duplicated == 0 && a.Order.OK() }

// auditor reads back the stores of the consumer's sinks and dead letter.
type auditor struct {
	stores []pipeline.StoreAudit
	dead   pipeline.StoreAudit
}

// openAuditor opens the read-back of every sink and the dead letter of
// cfg and empties them for the run. When it fails, the auditor it returns
// (nil, or the stores it opened) is what the run's cleanup deletes.
func openAuditor(ctx context.Context, cfg *pipeline.Config) (*auditor, error) {
	a, err := newAuditor(ctx, cfg)
	if err != nil {
		return a, err
	}
	if err := a.reset(ctx); err != nil {
		return a, err
	}
	return a, nil
}

func newAuditor(ctx context.Context, cfg *pipeline.Config) (*auditor, error) {
	a := &auditor{}
	for _, s := range cfg.Sinks {
		st, err := storeFor(ctx, &s.Spec)
		if err != nil {
			return a, err
		}
		a.stores = append(a.stores, st)
	}
	if cfg.DeadLetter != nil {
		st, err := storeFor(ctx, &cfg.DeadLetter.Spec)
		if err != nil {
			return a, err
		}
		a.dead = st
	}
	return a, nil
}

func (a *auditor) reset(ctx context.Context) error {
	for _, s := range append(append([]pipeline.StoreAudit(nil), a.stores...), a.dead) {
		if s != nil {
			if err := s.Reset(ctx); err != nil {
				return fmt.Errorf("reset %s before the run: %w", s.Name(), err)
			}
		}
	}
	return nil
}

// expectedSettled is how many events the consumer settles: every event sent.
func (a *auditor) expectedSettled(total int64) int64 { return total }

// sent regenerates the run's events exactly: id → times sent, and the
// ids of malformed (poison) events.
func sent(o Options) (map[string]int, map[string]bool, int64) {
	counts, poison := map[string]int{}, map[string]bool{}
	var n int64
	for i, ph := range o.Profile.Phases {
		count := ph.Count
		if ph.Rate > 0 {
			count = int64(ph.Rate * ph.Duration.Seconds())
		}
		var c generate.Config
		c.SetDefaults()
		c.Duplicates, c.Poison, c.Seed = o.Duplicates, o.Poison, o.Seed+uint64(i)
		gen := generate.NewGenerator(c.Workload(), time.Now)
		var ev pipeline.Event
		for range count {
			// A fresh buffer each time: duplicates re-emit earlier
			// payloads, which point into the buffers they were made in.
			gen.Next(&ev, nil)
			counts[ev.ID]++
			if !gjson.ValidBytes(ev.Payload) {
				poison[ev.ID] = true
			}
			n++
		}
	}
	return counts, poison, n
}

func (a *auditor) run(ctx context.Context, o Options, _ int64) (Audit, error) {
	want, poison, n := sent(o)
	res := Audit{Sent: n, Unique: int64(len(want)), Poison: int64(len(poison))}
	for _, s := range a.stores {
		got, err := s.Counts(ctx, want)
		if err != nil {
			return res, fmt.Errorf("read back %s: %w", s.Name(), err)
		}
		sc := StoreCount{Sink: s.Name(), Stored: int64(len(got))}
		for id, times := range want {
			if poison[id] {
				continue
			}
			switch stored := got[id]; {
			case stored == 0:
				sc.Lost++
			case s.Idempotent() && stored > 1, !s.Idempotent() && stored > times:
				sc.Duplicated++
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				sc.Duplicated++ // a document no sent event explains
			}
		}
		res.Stores = append(res.Stores, sc)
		res.Lost += sc.Lost
		res.Duplicated += sc.Duplicated
	}
	if a.dead != nil {
		got, err := a.dead.Counts(ctx, nil)
		if err != nil {
			return res, fmt.Errorf("read back the dead letter: %w", err)
		}
		for id := range poison {
			if got[id] > 0 {
				res.DeadLettered++
			} else {
				res.Lost++
			}
		}
	} else if len(poison) > 0 {
		return res, errors.New("the workload has poison events but the consumer has no dead_letter to audit")
	}
	return res, nil
}

// configField reads a config struct's field by its yaml key.
func configField(cfg any, key string) string {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == key {
			f := v.Field(i)
			if f.CanAddr() {
				if s, ok := f.Addr().Interface().(fmt.Stringer); ok {
					return s.String()
				}
			}
			if s, ok := f.Interface().(fmt.Stringer); ok {
				return s.String()
			}
			if f.Kind() == reflect.String {
				return f.String()
			}
		}
	}
	return ""
}

// storeFor finds the read-back of a sink: its config implements
// pipeline.Auditor.
func storeFor(ctx context.Context, s *pipeline.Spec) (pipeline.StoreAudit, error) {
	a, ok := s.Config.(pipeline.Auditor)
	if !ok {
		return nil, fmt.Errorf("%s: the audit cannot read %s sinks back yet", s.Label(), s.Name)
	}
	st, err := a.Audit(ctx, s.Label())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Label(), err)
	}
	return st, nil
}

// configStrings reads a []string config field by its yaml key.
func configStrings(cfg any, key string) []string {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == key {
			if ss, ok := v.Field(i).Interface().([]string); ok {
				return ss
			}
		}
	}
	return nil
}
