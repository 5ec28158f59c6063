package pipeline

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
)

// The metrics server bounds its connections: with the cap held by idle
// sockets a scrape waits, and is answered once one closes.
func TestMetricsServerCapsConnections(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metric 1\n") })
	ctx := t.Context()
	addr, stop, err := serve(ctx, "127.0.0.1:0", h, slog.New(slog.DiscardHandler), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Over the cap the scrape is not served: it can only finish early if
	// the cap is missing, so this wait cannot make the test flaky.
	select {
	case err := <-done:
		t.Fatalf("scrape answered (%v) while the cap of 2 connections was held by idle sockets", err)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	if err := testwait.Recv(t, done, "scrape answer after a connection closed", nil); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsServerTimeouts(t *testing.T) {
	srv := metricsServer(http.NotFoundHandler())
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if d <= 0 || d > time.Minute {
			t.Errorf("%s = %v, want a bound of at most a minute", name, d)
		}
	}
}
