package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/pipeline"
)

// watchInterval is how often --watch looks at the file.
const watchInterval = time.Second

// runWatching is `sluice run --watch`: it runs the pipeline of file and
// reloads it when the file's content changes or on SIGHUP.
func runWatching(ctx context.Context, file string, log *slog.Logger, summary io.Writer) error {
	reloads := make(chan string, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-hup:
				offer(reloads, "SIGHUP")
			}
		}
	}()
	go watchFile(watchCtx, file, watchInterval, reloads)
	return runReloading(ctx, file, reloads, log, summary)
}

// offer queues a reload unless one is already queued.
func offer(reloads chan<- string, why string) {
	select {
	case reloads <- why:
	default:
	}
}

// watchFile offers a reload when the file's content changes (editors that
// replace the file are seen too; a touch without a change is not).
func watchFile(ctx context.Context, file string, every time.Duration, reloads chan<- string) {
	sum := func() []byte {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil
		}
		h := sha256.Sum256(b)
		return h[:]
	}
	last := sum()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if cur := sum(); cur != nil && !bytes.Equal(cur, last) {
				last = cur
				offer(reloads, "file changed")
			}
		}
	}
}

// generation is one built pipeline of a reloading run.
type generation struct {
	cfg  *pipeline.Config
	p    *pipeline.Pipeline
	prom *prometheus.Registry
}

func buildGeneration(ctx context.Context, file string, log *slog.Logger) (*generation, error) {
	cfg, err := pipeline.LoadFile(file, registry(), os.LookupEnv)
	if err != nil {
		return nil, err
	}
	prom := prometheus.NewRegistry()
	prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := pipeline.Build(ctx, cfg, registry(), pipeline.WithLogger(log), pipeline.WithMetricsRegisterer(prom))
	if err != nil {
		return nil, err
	}
	return &generation{cfg: cfg, p: p, prom: prom}, nil
}

// runReloading runs file's pipeline; on each reload request it loads and
// builds the file again and, only if that works, stops the running pipeline
// the way SIGTERM does (stop reading, finish and ack in-flight batches within
// delivery.shutdown_timeout, commit, close) and starts the new one. A file
// that does not load or build is refused with its errors and the running
// pipeline goes on. The metrics server stays up across reloads, on the first
// file's metrics.listen.
func runReloading(ctx context.Context, file string, reloads <-chan string, log *slog.Logger, summary io.Writer) error {
	gen, err := buildGeneration(ctx, file, log)
	if err != nil {
		return err
	}
	var current atomic.Pointer[http.Handler]
	setHandler := func(g *generation) {
		h := withTap(g.p, g.p.Handler(g.prom))
		current.Store(&h)
	}
	setHandler(gen)
	if gen.cfg.Metrics.Listen != "" {
		stopServer, err := pipeline.Serve(ctx, gen.cfg.Metrics.Listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*current.Load()).ServeHTTP(w, r)
		}), log)
		if err != nil {
			return err
		}
		defer stopServer()
	}
	listen := gen.cfg.Metrics.Listen
	for n := 1; ; n++ {
		log.Info("pipeline starting", "pipeline", gen.cfg.Name, "file", file, "generation", n, "version", buildVersion())
		start := time.Now()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func(p *pipeline.Pipeline) { done <- p.Run(runCtx) }(gen.p)
		next, runErr, reloaded := awaitReload(ctx, file, gen, reloads, done, stop, log)
		stop()
		printSummary(gen, time.Since(start), log, summary)
		if !reloaded || runErr != nil {
			return runErr
		}
		if next.cfg.Metrics.Listen != listen {
			log.Warn("metrics.listen changed: it takes effect at the next restart", "serving", listen, "file", next.cfg.Metrics.Listen)
		}
		gen = next
		setHandler(gen)
	}
}

// awaitReload waits for the pipeline to end or a reload that builds. On a
// reload it stops the old pipeline (waiting for its graceful end) and
// returns the new generation with reloaded true.
func awaitReload(ctx context.Context, file string, gen *generation, reloads <-chan string, done <-chan error, stop context.CancelFunc, log *slog.Logger) (next *generation, runErr error, reloaded bool) {
	for {
		select {
		case err := <-done:
			return nil, err, false
		case why := <-reloads:
			next, err := buildGeneration(ctx, file, log)
			if err != nil {
				var ce pipeline.ConfigErrors
				if errors.As(err, &ce) {
					log.Error("reload refused: the file has errors; the running pipeline goes on", "trigger", why, "errors", ce.Error())
				} else {
					log.Error("reload refused: the new pipeline does not build; the running pipeline goes on", "trigger", why, "err", err)
				}
				continue
			}
			log.Info("reloading: stopping the running pipeline (in-flight batches finish and are acked)", "trigger", why)
			stop()
			if err := <-done; err != nil {
				return nil, fmt.Errorf("the pipeline stopped with an error while reloading: %w", err), false
			}
			return next, nil, true
		}
	}
}

func printSummary(gen *generation, elapsed time.Duration, log *slog.Logger, summary io.Writer) {
	printRunSummary(gen.cfg.Name, gen.p.Stats(), elapsed, log, summary)
}
