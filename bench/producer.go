package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// runPhases runs the producer, one run per phase, each with its own seed
// so ids differ. It returns a live count of what was produced and a
// channel that receives the producer's end, and one closed once the
// producer is gone (after ctx ends, the run waits on it before it deletes
// the topic the producer writes to).
func runPhases(ctx context.Context, o Options, producer []byte, vars map[string]string) (func() int64, <-chan error, <-chan struct{}) {
	var mu sync.Mutex
	var before int64
	var current func() int64
	done, exited := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		for i, ph := range o.Profile.Phases {
			count := ph.Count
			if ph.Rate > 0 {
				count = int64(ph.Rate * ph.Duration.Seconds())
			}
			stats, wait, err := startProducer(ctx, o, producer, vars, ph, count, o.Seed+uint64(i))
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			current = stats
			mu.Unlock()
			if err := wait(); err != nil {
				done <- fmt.Errorf("producer phase %s: %w", ph.Name, err)
				return
			}
			mu.Lock()
			before += count
			current = nil
			mu.Unlock()
		}
		done <- nil
	}()
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		n := before
		if current != nil {
			n += current()
		}
		return n
	}, done, exited
}

// startProducer runs one phase's producer and returns a live count of what
// it has written and a wait function.
func startProducer(ctx context.Context, o Options, producerYAML []byte, vars map[string]string, ph Phase, count int64, seed uint64) (func() int64, func() error, error) {
	rate := "1000000000/s" // "as fast as it goes": the generator never waits
	if ph.Rate > 0 {
		rate = strconv.FormatFloat(ph.Rate, 'f', 3, 64) + "/s"
	}
	pv := map[string]string{
		"BENCH_RATE": rate, "BENCH_COUNT": strconv.FormatInt(count, 10), "BENCH_SEED": strconv.FormatUint(seed, 10),
		"BENCH_DUPLICATES": strconv.FormatFloat(o.Duplicates, 'f', -1, 64), "BENCH_POISON": strconv.FormatFloat(o.Poison, 'f', -1, 64),
	}
	for k, v := range vars {
		pv[k] = v
	}
	if o.Binary == "" {
		cfg, err := pipeline.Load("bench/producer.yaml", producerYAML, o.Registry(), func(k string) (string, bool) { v, ok := pv[k]; return v, ok })
		if err != nil {
			return nil, nil, err
		}
		p, err := pipeline.Build(ctx, cfg, o.Registry(), pipeline.WithLogger(o.Logger))
		if err != nil {
			return nil, nil, err
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		return func() int64 { return p.Stats().Read }, func() error { return <-done }, nil
	}
	file := filepath.Join(o.OutDir, "producer-"+ph.Name+".yaml")
	if err := os.WriteFile(file, producerYAML, 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, o.Binary, "run", "-c", file, "--log-level", "warn")
	cmd.Env = os.Environ()
	for k, v := range pv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	began := time.Now()
	// The child reports only at its end; estimate progress from its rate.
	estimate := func() int64 {
		if ph.Rate > 0 {
			return min(count, int64(time.Since(began).Seconds()*ph.Rate))
		}
		return 0
	}
	return estimate, func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 5))
		}
		return nil
	}, nil
}
