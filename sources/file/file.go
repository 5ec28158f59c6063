// Package file is a source that reads events from a JSON-lines file.
package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// Config is the `file` source's YAML.
type Config struct {
	Path string `yaml:"path" required:"true"`
	// IDField, KeyField and TimeField are JSON paths read from each line
	// (gjson syntax). Without an id, a line's id is "<file>:<line>"; a
	// line's key orders it against other lines with the same key.
	IDField   string `yaml:"id_field"`
	KeyField  string `yaml:"key_field"`
	TimeField string `yaml:"time_field"`
	BatchSize int    `yaml:"batch_size"`
	// MaxLineBytes bounds a line; a longer line stops the source with an
	// error naming it, rather than being cut.
	MaxLineBytes pipeline.ByteSize `yaml:"max_line_bytes"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.IDField = "id"
	c.BatchSize = 500
	c.MaxLineBytes = 16 << 20
}

// Validate checks ranges.
func (c *Config) Validate() error {
	var errs []error
	if c.BatchSize <= 0 {
		errs = append(errs, pipeline.FieldErrorf("batch_size", "must be at least 1"))
	}
	if c.MaxLineBytes < 1024 {
		errs = append(errs, pipeline.FieldErrorf("max_line_bytes", "must be at least 1KiB"))
	}
	return errors.Join(errs...)
}

// Register adds the file source to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSource(r, "file", "events from a JSON-lines file, read once to its end", func(bc pipeline.BuildContext, c *Config) (pipeline.Source, error) {
		return Open(*c)
	})
}

// Source reads a file line by line. It keeps no checkpoint: every run
// reads the file from the start, and idempotent sink writes absorb the
// repeat.
type Source struct {
	cfg  Config
	f    *os.File
	r    *bufio.Reader
	line int
	name string
}

// Open opens the file of c.
func Open(c Config) (*Source, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, fmt.Errorf("open file source: %w", err)
	}
	return &Source{cfg: c, f: f, r: bufio.NewReaderSize(f, 256<<10), name: filepath.Base(c.Path)}, nil
}

// Read returns the next batch_size lines (blank lines are skipped) and
// io.EOF with the last of them.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var out []*pipeline.Event
	for len(out) < s.cfg.BatchSize {
		line, err := s.readLine()
		if len(line) > 0 {
			out = append(out, s.event(line))
		}
		if err == io.EOF {
			if len(out) > 0 {
				return out, func(error) {}, io.EOF
			}
			return nil, nil, io.EOF
		}
		if err != nil {
			return out, func(error) {}, pipeline.Permanent(err)
		}
	}
	return out, func(error) {}, nil
}

func (s *Source) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > int(s.cfg.MaxLineBytes) {
			return nil, fmt.Errorf("%s:%d: line longer than max_line_bytes (%d)", s.cfg.Path, s.line+1, s.cfg.MaxLineBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", s.cfg.Path, err)
		}
		if len(line) > 0 || err == nil {
			s.line++
		}
		for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
			line = line[:len(line)-1]
		}
		return line, err
	}
}

func (s *Source) event(line []byte) *pipeline.Event {
	ev := &pipeline.Event{Payload: line}
	ev.Meta = pipeline.Meta{{Key: "file", Value: s.cfg.Path}, {Key: "line", Value: strconv.Itoa(s.line)}}
	if s.cfg.IDField != "" {
		if v := gjson.GetBytes(line, s.cfg.IDField); v.Exists() && v.String() != "" {
			ev.ID = v.String()
		}
	}
	if ev.ID == "" {
		ev.ID = s.name + ":" + strconv.Itoa(s.line)
	}
	if s.cfg.KeyField != "" {
		if v := gjson.GetBytes(line, s.cfg.KeyField); v.Exists() {
			ev.Key = []byte(v.String())
		}
	}
	if s.cfg.TimeField != "" {
		if v := gjson.GetBytes(line, s.cfg.TimeField); v.Exists() {
			if t, err := time.Parse(time.RFC3339Nano, v.String()); err == nil {
				ev.Time = t
			}
		}
	}
	return ev
}

// Close closes the file.
func (s *Source) Close(context.Context) error { return s.f.Close() }
