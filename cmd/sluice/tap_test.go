package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

// startTapped runs yaml in-process behind a test server with /tap, and
// stops it when the test ends.
func startTapped(t *testing.T, yaml string) (*pipeline.Pipeline, string) {
	t.Helper()
	cfg, err := pipeline.Load("tap.yaml", []byte(yaml), registry(), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := pipeline.Build(context.Background(), cfg, registry(), pipeline.WithMetricsRegisterer(reg), pipeline.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(withTap(p, p.Handler(reg)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline: %v", err)
		}
		srv.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for !p.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("pipeline not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p, srv.URL
}

func tappedYAML(dir string, tap bool) string {
	return `name: tapped
source: {generate: {rate: 2000/s, mix: {crm: 0.5, email: 0.5}}}
transforms:
  - decode: {format: json, id: id, time: occurred_at}
  - enrich: {}
sinks:
  - file: {path: ` + dir + `/out.jsonl, fsync: false}
metrics: {listen: "127.0.0.1:0", tap: ` + map[bool]string{true: "true", false: "false"}[tap] + `}
`
}

func TestTapRunningPipeline(t *testing.T) {
	_, url := startTapped(t, tappedYAML(t.TempDir(), true))
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(t *testing.T, out string)
		wantErr string
	}{
		{"json lines after a transform", []string{"--component", "transforms[1]", "--limit", "3", "--rate", "1000"}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines, want 3:\n%s", len(lines), out)
			}
			for _, l := range lines {
				var te pipeline.TapEvent
				if err := json.Unmarshal([]byte(l), &te); err != nil {
					t.Fatalf("not a TapEvent: %v: %s", err, l)
				}
				if te.Component != "transforms[1].enrich" || te.Stage != "after" || te.ID == "" || !json.Valid(te.Body) {
					t.Fatalf("tap event %+v", te)
				}
				if kind := gjsonString(te.Body, "entity.kind"); kind == "" {
					t.Fatalf("not an enriched body: %s", te.Body)
				}
			}
		}, ""},
		{"before a component: the input", []string{"--stage", "before:transforms[1].enrich", "--limit", "1"}, func(t *testing.T, out string) {
			var te pipeline.TapEvent
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &te); err != nil || te.Stage != "before" || gjsonString(te.Body, "entity.kind") != "" {
				t.Fatalf("want one decoded, not yet enriched event: %v %s", err, out)
			}
		}, ""},
		{"filter", []string{"--component", "sinks[0]", "--filter", `source == "ses"`, "--limit", "5", "--rate", "1000"}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 5 {
				t.Fatalf("%d lines:\n%s", len(lines), out)
			}
			for _, l := range lines {
				var te pipeline.TapEvent
				_ = json.Unmarshal([]byte(l), &te)
				if gjsonString(te.Body, "source") != "ses" || te.Component != "sinks[0].file" {
					t.Fatalf("filter let through %s", l)
				}
			}
		}, ""},
		{"table", []string{"--component", "source", "--limit", "2", "--format", "table"}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "AT") || !strings.Contains(lines[1], "source.generate") {
				t.Fatalf("table:\n%s", out)
			}
		}, ""},
		{"unknown component", []string{"--component", "transforms[7]"}, nil, `unknown component "transforms[7]"; this pipeline has: sinks[0].file, source.generate, transforms[0].decode, transforms[1].enrich`},
		{"no stage before a source", []string{"--stage", "before:source"}, nil, `source.generate has no stage "before"`},
		{"bad filter", []string{"--component", "sinks[0]", "--filter", "type =="}, nil, "filter:"},
		{"bad rate", []string{"--component", "sinks[0]", "--rate", "5000"}, nil, "rate must be"},
		{"no component", nil, nil, "name a component"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := execute(append([]string{"tap", url, "--timeout", "60s"}, tc.args...), &out, &errOut)
			if tc.wantErr != "" {
				if code == 0 || !strings.Contains(errOut.String(), tc.wantErr) {
					t.Fatalf("exit %d, stderr %q, want %q", code, errOut.String(), tc.wantErr)
				}
				if n := strings.Count(strings.TrimSpace(errOut.String()), "\n"); n > 3 {
					t.Fatalf("want a short error, got:\n%s", errOut.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			tc.check(t, out.String())
		})
	}
}

func TestTapOffAndNowhere(t *testing.T) {
	_, url := startTapped(t, tappedYAML(t.TempDir(), false))
	var out, errOut bytes.Buffer
	if code := execute([]string{"tap", url, "--component", "sinks[0]"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "tap is off for this pipeline: set metrics.tap: true") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	srv := httptest.NewServer(nil) // answers 404 to everything
	srv.Close()
	if code := execute([]string{"tap", srv.URL, "--component", "sinks[0]"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "no pipeline answers there") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestTapEndsWhenThePipelineStops(t *testing.T) {
	dir := t.TempDir()
	yaml := strings.Replace(tappedYAML(dir, true), "rate: 2000/s", "rate: 2000/s, count: 2000", 1)
	_, url := startTapped(t, yaml)
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- execute([]string{"tap", url, "--component", "sinks[0]"}, &out, &errOut) }()
	if code := testwait.Recv(t, done, "tap exit after its pipeline was exhausted", nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func gjsonString(body []byte, path string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[k]
	}
	s, _ := cur.(string)
	return s
}
