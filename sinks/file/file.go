// Package file holds the `file` and `stdout` sinks: JSON lines appended to
// a file (fsynced per batch) or written to standard output.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/pipeline"
)

// Format is what one line holds.
type Format string

// The formats a line can take.
const (
	// FormatBody writes the decoded body, or the payload if nothing
	// decoded it.
	FormatBody Format = "body"
	// FormatPayload writes the payload exactly as received.
	FormatPayload Format = "payload"
	// FormatEvent writes an envelope: id, key, time, meta and body.
	FormatEvent Format = "event"
)

func (f Format) valid() bool { return f == FormatBody || f == FormatPayload || f == FormatEvent }

// Config is the `file` sink's YAML.
type Config struct {
	Path   string `yaml:"path" required:"true"`
	Format Format `yaml:"format" enum:"body,payload,event"`
	// Fsync makes a write durable before it returns (default true): the
	// runner acks the source once Write returns.
	Fsync bool `yaml:"fsync"`
	// Mode is the permission of a file the sink creates, in octal (default
	// "0600": events may hold personal data). An existing file keeps its own.
	Mode FileMode `yaml:"mode"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() { c.Format, c.Fsync, c.Mode = FormatBody, true, 0o600 }

// FileMode is permission bits written in octal: "0640", 0640 or 0o640.
type FileMode os.FileMode

// UnmarshalYAML reads the scalar's text as octal, whatever YAML would type
// it as (0640 unquoted is not the same number in every YAML version).
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimPrefix(strings.TrimPrefix(n.Value, "0o"), "0O")
	v, err := strconv.ParseUint(s, 8, 32)
	if n.Kind != yaml.ScalarNode || err != nil || v > 0o777 {
		return fmt.Errorf("expected permission bits in octal, like \"0600\" or \"0640\"")
	}
	*m = FileMode(v)
	return nil
}

// Validate checks the format.
func (c *Config) Validate() error { return validFormat(c.Format) }

// StdoutConfig is the `stdout` sink's YAML.
type StdoutConfig struct {
	Format Format `yaml:"format" enum:"body,payload,event"`
}

// SetDefaults fills the documented defaults.
func (c *StdoutConfig) SetDefaults() { c.Format = FormatBody }

// Validate checks the format.
func (c *StdoutConfig) Validate() error { return validFormat(c.Format) }

func validFormat(f Format) error {
	if !f.valid() {
		return pipeline.FieldErrorf("format", "must be one of body, payload, event; got %q", f)
	}
	return nil
}

// Register adds the file and stdout sinks to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSink(r, "file", "JSON lines appended to a file, fsynced per batch", func(bc pipeline.BuildContext, c *Config) (pipeline.Sink, error) {
		return New(bc, *c)
	})
	pipeline.RegisterSink(r, "stdout", "JSON lines on standard output", func(bc pipeline.BuildContext, c *StdoutConfig) (pipeline.Sink, error) {
		return NewStdout(bc, *c)
	})
}

// Sink writes lines to an io.Writer, one Write call per batch.
type Sink struct {
	mu     sync.Mutex
	w      io.Writer
	format Format
	sync   func() error
	close  func() error
	buf    []byte
}

// New opens (creating or appending to) the file of c.
func New(_ pipeline.BuildContext, c Config) (*Sink, error) {
	mode := os.FileMode(c.Mode)
	if mode == 0 {
		mode = 0o600
	}
	f, err := os.OpenFile(c.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, mode)
	switch {
	case err == nil:
		// Created: the umask may have narrowed mode; set what was asked.
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return nil, fmt.Errorf("open file sink: %w", err)
		}
	case errors.Is(err, os.ErrExist):
		f, err = os.OpenFile(c.Path, os.O_WRONLY|os.O_APPEND, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open file sink: %w", err)
	}
	s := NewWriter(f, c.Format, f.Close)
	if c.Fsync {
		s.sync = f.Sync
	}
	return s, nil
}

// NewStdout returns the stdout sink: lines on the process's standard output.
func NewStdout(_ pipeline.BuildContext, c StdoutConfig) (*Sink, error) {
	return NewWriter(os.Stdout, c.Format, nil), nil
}

// NewWriter returns a sink writing to w; closeFn (may be nil) runs on Close.
// It is the library under New and NewStdout, not a component constructor:
// a program or test that holds its own io.Writer (a buffer, a pipe) writes
// through it without a file or a BuildContext.
func NewWriter(w io.Writer, format Format, closeFn func() error) *Sink {
	return &Sink{w: w, format: format, close: closeFn}
}

// Write appends one line per event. An event that cannot be encoded fails
// permanently on its own (a *pipeline.BatchError). A failed write or fsync
// is retryable:
// the runner rewrites the batch, and readers of the file must tolerate the
// repeated lines that a partial write leaves (ids are stable).
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := s.buf[:0]
	// An event that cannot be encoded fails alone (permanently); the
	// others are written.
	be := pipeline.NewBatchError()
	for i, ev := range batch {
		n := len(buf)
		var err error
		if buf, err = s.appendLine(buf, ev); err != nil {
			buf = buf[:n]
			be.Fail(i, err)
		}
	}
	s.buf = buf
	if len(buf) == 0 {
		return be.Err()
	}
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("write %d events: %w", len(batch), err)
	}
	if s.sync != nil {
		if err := s.sync(); err != nil {
			return fmt.Errorf("fsync after %d events: %w", len(batch), err)
		}
	}
	if cap(s.buf) > 64<<20 {
		s.buf = nil // one huge batch must not pin its memory forever
	}
	return be.Err()
}

type envelope struct {
	ID   string            `json:"id"`
	Key  string            `json:"key,omitempty"`
	Time *time.Time        `json:"time,omitempty"`
	Meta map[string]string `json:"meta,omitempty"`
	Body json.RawMessage   `json:"body,omitempty"`
	Raw  string            `json:"payload,omitempty"`
}

func (s *Sink) appendLine(buf []byte, ev *pipeline.Event) ([]byte, error) {
	switch s.format {
	case FormatPayload:
		buf = append(buf, ev.Payload...)
	case FormatEvent:
		e := envelope{ID: ev.ID, Key: string(ev.Key), Body: ev.Body}
		if !ev.Time.IsZero() {
			e.Time = &ev.Time
		}
		if ev.Body == nil {
			e.Raw = string(ev.Payload)
		}
		if len(ev.Meta) > 0 {
			e.Meta = make(map[string]string, len(ev.Meta))
			for _, p := range ev.Meta {
				e.Meta[p.Key] = p.Value
			}
		}
		b, err := json.Marshal(&e)
		if err != nil {
			return buf, pipeline.Permanent(fmt.Errorf("encode event %s: %w", ev.ID, err))
		}
		buf = append(buf, b...)
	default:
		line := ev.Body
		if line == nil {
			line = ev.Payload
		}
		if bytes.IndexByte(line, '\n') < 0 {
			buf = append(buf, line...)
		} else if compact := new(bytes.Buffer); json.Compact(compact, line) == nil {
			buf = append(buf, compact.Bytes()...)
		} else {
			// Not JSON: a raw payload with line breaks. Keep it on one
			// line as a JSON string rather than split it.
			buf = pipeline.AppendJSONStringBytes(buf, line)
		}
	}
	return append(buf, '\n'), nil
}

// Close closes the file (stdout is left open).
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.close == nil {
		return nil
	}
	err := s.close()
	s.close = nil
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
