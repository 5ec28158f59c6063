package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
)

// waitFor polls cond; the bound only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	write := func(sink string, extra string) {
		t.Helper()
		doc := "name: reloading\nsource: {generate: {rate: 500/s}}\ntransforms:\n  - decode: {format: json, id: id}\n" +
			"sinks:\n  - file: {path: " + filepath.Join(dir, sink) + ", fsync: false}\n" + extra
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("out1.jsonl", "")
	var logs, summary testwait.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runReloading(ctx, file, reloads, log, &summary) }()
	out1, out2 := filepath.Join(dir, "out1.jsonl"), filepath.Join(dir, "out2.jsonl")
	waitFor(t, "the first pipeline to write", func() bool { return lines(out1) > 0 })

	// A broken file is refused and the running pipeline goes on.
	write("out2.jsonl", "batch: {max_evnts: 10}\n")
	reloads <- "test"
	waitFor(t, "the refusal", func() bool { return strings.Contains(logs.String(), "reload refused") })
	if !strings.Contains(logs.String(), "max_evnts: unknown field (did you mean max_events?)") {
		t.Fatalf("the refusal does not say why:\n%s", logs.String())
	}
	n := lines(out1)
	waitFor(t, "the old pipeline to keep writing", func() bool { return lines(out1) > n+10 })
	if _, err := os.Stat(out2); err == nil {
		t.Fatal("the refused file was started")
	}

	// A valid file replaces the pipeline: the old one ends gracefully.
	write("out2.jsonl", "")
	reloads <- "test"
	waitFor(t, "the new pipeline to write", func() bool { return lines(out2) > 0 })
	if s := summary.String(); !strings.Contains(s, "reloading: ") || !strings.Contains(s, " 0 abandoned unacked") {
		t.Fatalf("the first pipeline's summary %q: want it ended with nothing abandoned", s)
	}
	final := lines(out1)
	time.Sleep(200 * time.Millisecond) // the old sink is closed: it must not grow
	if lines(out1) != final {
		t.Fatal("the old pipeline still writes after the reload")
	}
	cancel()
	if err := testwait.Recv(t, done, "run stop after cancel", nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Count(summary.String(), " events read in ") != 2 {
		t.Fatalf("want two summaries, got:\n%s", summary.String())
	}
}

func TestWatchFileOffersReloadsOnContentChange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan string, 1)
	go watchFile(ctx, file, 10*time.Millisecond, reloads)
	time.Sleep(50 * time.Millisecond)
	now := time.Now().Add(time.Minute)
	_ = os.Chtimes(file, now, now) // touched, same content
	time.Sleep(100 * time.Millisecond)
	select {
	case why := <-reloads:
		t.Fatalf("a reload (%s) for a touch without a change", why)
	default:
	}
	if err := os.WriteFile(file, []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if why := testwait.Recv(t, reloads, "reload after the file changed", nil); why != "file changed" {
		t.Fatalf("reason %q", why)
	}
}
