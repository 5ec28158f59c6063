package pipeline_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

type flakySink struct {
	pipelinetest.Sink
	down atomic.Bool
}

func (s *flakySink) Ready() error {
	if s.down.Load() {
		return errors.New("brokers unreachable")
	}
	return nil
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 5, oneKey))
	src.BlockWhenDone = true
	sink := &flakySink{}
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src, sink)
	cfg, err := pipeline.Load("t.yaml", []byte("name: obs\nsource: {mem: {}}\nsinks: [{mem: {index: 0}}]\nbatch: {max_wait: 1ms}\n"), reg, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	prom := prometheus.NewRegistry()
	p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithMetricsRegisterer(prom))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler(prom))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not running") {
		t.Fatalf("/readyz before Run = %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the batch to be written", func() bool { return len(sink.IDs()) == 5 })
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz while running = %d %q", code, body)
	}
	sink.down.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "sinks[0].mem: brokers unreachable") {
		t.Fatalf("/readyz with a sink down = %d %q", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`sluice_events_out_total{component="sinks[0].mem",pipeline="obs"} 5`,
		`sluice_source_acks_total{pipeline="obs",result="ok"} 1`,
		`sluice_end_to_end_latency_seconds_count{pipeline="obs"} 5`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"", http.StatusNotFound},
		{"metrics: {pprof: false}\n", http.StatusNotFound},
		{"metrics: {pprof: true}\n", http.StatusOK},
	} {
		reg := pipeline.NewRegistry()
		pipelinetest.Register(reg, pipelinetest.NewSource(), &pipelinetest.Sink{})
		cfg, err := pipeline.Load("t.yaml", []byte("name: pp\nsource: {mem: {}}\nsinks: [{mem: {index: 0}}]\n"+tc.yaml), reg, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		prom := prometheus.NewRegistry()
		p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithMetricsRegisterer(prom))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(p.Handler(prom))
		resp, err := srv.Client().Get(srv.URL + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%q: /debug/pprof/goroutine = %d, want %d", tc.yaml, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusOK && !strings.Contains(string(body), "goroutine") {
			t.Errorf("%q: pprof body %.80q is not a goroutine profile", tc.yaml, body)
		}
	}
}
