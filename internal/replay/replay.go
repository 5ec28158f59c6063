package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/sluicehq/sluice/internal/kafkaconn"
	"github.com/sluicehq/sluice/pipeline"
)

// Options is one replay.
type Options struct {
	// Kafka connects to the dead-letter topic and the target topic.
	Brokers []string
	TLS     *pipeline.TLSConfig
	SASL    *kafkaconn.SASL

	// FromTopic or FromFile is where the dead letters are.
	FromTopic string
	FromFile  string

	// ToTopic, or Pipeline (with Registry), is where the originals go; a
	// dry run needs neither.
	ToTopic  string
	Pipeline *pipeline.Config
	Registry *pipeline.Registry
	DryRun   bool

	// Filter is an expr-lang expression a dead letter must satisfy to be
	// replayed; see FilterHelp.
	Filter string

	// Batch is the most records read (and written) at once; default 500.
	Batch int
	// Progress receives a progress line every ProgressEvery (default 2s);
	// nil prints none.
	Progress      io.Writer
	ProgressEvery time.Duration
	Log           *slog.Logger
}

// FilterHelp documents what a --filter expression sees.
const FilterHelp = `reason, component, pipeline, id, key (strings), attempts (int),
failed_at (time: failed_at > now() - duration("2h")), headers (map of every
record header, the sluice.dead_letter.* ones included) and source (map of
where the event was first read: source["kafka.topic"], source["kafka.partition"])`

// Summary is what a replay did.
type Summary struct {
	// From describes the snapshot read: the topic and its end offsets.
	From string
	// Read dead letters, of which Matched passed the filter (and were
	// replayed, unless a dry run) and Skipped did not.
	Read, Matched, Skipped int64
	// Replayed were written to the target topic, or settled by the
	// pipeline (see Pipeline for how).
	Replayed int64
	// NotReplayed were matched but the pipeline stopped before settling
	// them; replaying again picks them up.
	NotReplayed int64
	// ByReason counts the matched dead letters per reason and component;
	// reasons are grouped with their numbers and quoted excerpts masked.
	ByReason []ReasonCount
	// Pipeline is the pipeline's summary in pipeline mode: Written,
	// Dropped, DeadLettered (failed again, with the new reason).
	Pipeline *pipeline.Stats
}

// ReasonCount is one row of the per-reason table.
type ReasonCount struct {
	Reason, Component string
	Count             int64
}

// reader is a dead-letter topic or file, read up to its snapshot.
type reader interface {
	Next(ctx context.Context) ([]Record, error)
	Total() int64
	Describe() string
	Close() error
}

// Run replays (or, with DryRun, counts) the dead letters of o.
func Run(ctx context.Context, o Options) (*Summary, error) {
	o.Batch = cmp.Or(o.Batch, 500)
	o.ProgressEvery = cmp.Or(o.ProgressEvery, 2*time.Second)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	filter, err := compileFilter(o.Filter)
	if err != nil {
		return nil, err
	}
	var conn *kafkaconn.Conn
	if o.FromTopic != "" || o.ToTopic != "" {
		if conn, err = kafkaconn.New(o.Brokers, o.TLS, o.SASL); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	var rd reader
	if o.FromFile != "" {
		rd, err = openFile(o.FromFile, o.Batch)
	} else {
		rd, err = openTopic(ctx, conn, o.FromTopic, o.Batch, o.Log)
	}
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	r := &replay{o: o, rd: rd, filter: filter, byReason: map[[2]string]int64{}}
	stopProgress := r.progress()
	switch {
	case o.DryRun:
		err = r.each(ctx, func(context.Context, []Record) error { return nil })
		r.replayed.Store(0)
	case o.ToTopic != "":
		w := newTopicWriter(conn, o.ToTopic)
		err = r.each(ctx, func(ctx context.Context, recs []Record) error { return w.Write(ctx, recs, 10) })
		err = errors.Join(err, w.Close())
	default:
		err = r.throughPipeline(ctx)
	}
	stopProgress()
	return r.summary(), err
}

func (o *Options) check() error {
	switch {
	case (o.FromTopic == "") == (o.FromFile == ""):
		return errors.New("replay: give the dead letters' topic or file, one of them")
	case !o.DryRun && (o.ToTopic == "") == (o.Pipeline == nil):
		return errors.New("replay: give a target topic or a pipeline file, one of them (or a dry run)")
	case (o.FromTopic != "" || o.ToTopic != "") && len(o.Brokers) == 0:
		return errors.New("replay: Kafka brokers are needed to read or write a topic")
	}
	return nil
}

// replay is the state of one Run.
type replay struct {
	o      Options
	rd     reader
	filter *vm.Program

	read, matched, skipped, replayed, notReplayed atomic.Int64

	mu       sync.Mutex
	byReason map[[2]string]int64
	stats    *pipeline.Stats
}

// next reads the next batch and returns the records the filter accepts.
func (r *replay) next(ctx context.Context) ([]Record, error) {
	for {
		recs, err := r.rd.Next(ctx)
		r.read.Add(int64(len(recs)))
		kept := recs[:0]
		for i := range recs {
			ok, ferr := r.accept(&recs[i])
			if ferr != nil {
				return nil, ferr
			}
			if ok {
				kept = append(kept, recs[i])
			}
		}
		r.matched.Add(int64(len(kept)))
		r.skipped.Add(int64(len(recs) - len(kept)))
		if len(kept) > 0 || err != nil {
			return kept, err
		}
	}
}

func (r *replay) accept(rec *Record) (bool, error) {
	if r.filter != nil {
		out, err := expr.Run(r.filter, rec.env())
		if err != nil {
			return false, fmt.Errorf("replay: --filter on the dead letter at %s: %w", rec.From, err)
		}
		if ok, _ := out.(bool); !ok {
			return false, nil
		}
	}
	r.mu.Lock()
	r.byReason[[2]string{reasonClass(rec.Reason()), rec.Component()}]++
	r.mu.Unlock()
	return true, nil
}

// each hands every accepted batch to do, until the snapshot's end.
func (r *replay) each(ctx context.Context, do func(context.Context, []Record) error) error {
	for {
		recs, err := r.next(ctx)
		if len(recs) > 0 {
			if derr := do(ctx, recs); derr != nil {
				r.notReplayed.Add(int64(len(recs)))
				return derr
			}
			r.replayed.Add(int64(len(recs)))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func compileFilter(src string) (*vm.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	sample := (&Record{}).env()
	p, err := expr.Compile(src, expr.Env(sample), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("replay: --filter: %w", err)
	}
	return p, nil
}

// progress prints a line every ProgressEvery until the returned func runs.
func (r *replay) progress() (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.o.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(r.o.Progress, r.progressLine())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (r *replay) progressLine() string {
	read := r.read.Load()
	bar := ""
	if total := r.rd.Total(); total > 0 {
		frac := min(1, float64(read)/float64(total))
		n := int(frac * 30)
		bar = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", 30-n), 100*frac)
		return fmt.Sprintf("replay %s%d/%d read, %d replayed, %d skipped by the filter", bar, read, total, r.replayed.Load(), r.skipped.Load())
	}
	return fmt.Sprintf("replay: %d read, %d replayed, %d skipped by the filter", read, r.replayed.Load(), r.skipped.Load())
}

func (r *replay) summary() *Summary {
	s := &Summary{
		From: r.rd.Describe(), Read: r.read.Load(), Matched: r.matched.Load(), Skipped: r.skipped.Load(),
		Replayed: r.replayed.Load(), NotReplayed: r.notReplayed.Load(), Pipeline: r.stats,
	}
	r.mu.Lock()
	for k, n := range r.byReason {
		s.ByReason = append(s.ByReason, ReasonCount{Reason: k[0], Component: k[1], Count: n})
	}
	r.mu.Unlock()
	slices.SortFunc(s.ByReason, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Component, b.Component))
	})
	return s
}

var (
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"?|'[^']*'`)
	number = regexp.MustCompile(`[0-9]+`)
)

// reasonClass groups reasons that differ only in the event they name: a
// quoted excerpt becomes "…" and each number N ("payload of 347 bytes").
func reasonClass(reason string) string {
	reason = quoted.ReplaceAllString(reason, `"…"`)
	return number.ReplaceAllString(reason, "N")
}
