package kafkaconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// humanOffset mimics kafka-go's unexported offset type: an int64 kind
// with its own formatting.
type humanOffset int64

func (h humanOffset) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "%d", int64(h)) }

const readerMsg = "the kafka reader got an unknown error reading partition %d of %s at offset %d: %s"

// readTimeout is the error a net.Conn read returns once its deadline passed.
func readTimeout(t *testing.T) error {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = a.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := a.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("expected a deadline error, got %v", err)
	}
	return &net.OpError{Op: "read", Net: "tcp", Err: err}
}

func TestReaderErrorLoggerClassifiesIdleFetchTimeouts(t *testing.T) {
	timeout := readTimeout(t)
	caughtUpTo := int64(100) // the partition's high watermark
	idle := func(offset int64) bool { return offset >= caughtUpTo }
	for _, tc := range []struct {
		name      string
		msg       string
		args      []any
		wantLevel string // "" = nothing at Warn or above
		wantText  string
	}{
		{"timeout on a caught-up partition", readerMsg, []any{3, "crm.events", humanOffset(100), timeout}, "DEBUG", "long poll outlived the read deadline"},
		{"timeout wrapped", readerMsg, []any{3, "crm.events", humanOffset(120), fmt.Errorf("fetch: %w", timeout)}, "DEBUG", "offset=120"},
		{"timeout with records waiting", readerMsg, []any{3, "crm.events", humanOffset(40), timeout}, "WARN", "at offset 40: read tcp: read pipe: i/o timeout"},
		{"other unknown error", readerMsg, []any{3, "crm.events", humanOffset(100), io.ErrUnexpectedEOF}, "WARN", "unexpected EOF"},
		{"connection reset", readerMsg, []any{3, "crm.events", humanOffset(100), errors.New("read: connection reset by peer")}, "WARN", "connection reset"},
		{"another message with a timeout", "failed to read from current broker %v for partition %d of %s at offset %d: %v", []any{[]string{"b"}, 3, "crm.events", humanOffset(100), timeout}, "WARN", "failed to read"},
		{"malformed args", readerMsg, []any{3, "crm.events"}, "WARN", "reading partition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ReaderErrorLogger(log, idle).Printf(tc.msg, tc.args...)
			out := buf.String()
			if !strings.Contains(out, "level="+tc.wantLevel) || !strings.Contains(out, tc.wantText) {
				t.Fatalf("logged %q; want level %s containing %q", out, tc.wantLevel, tc.wantText)
			}
			if strings.Count(out, "\n") != 1 {
				t.Fatalf("logged %d lines, want 1: %q", strings.Count(out, "\n"), out)
			}
		})
	}
}

func TestIsTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", os.ErrDeadlineExceeded, true},
		{"net op error", readTimeout(t), true},
		{"eof", io.EOF, false},
		{"plain", errors.New("i/o timeout"), false}, // text is not enough
	} {
		if got := IsTimeout(tc.err); got != tc.want {
			t.Errorf("%s: IsTimeout(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
