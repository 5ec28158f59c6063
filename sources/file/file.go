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
	"sync"
	"time"
	"unsafe"

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
		return New(bc, *c)
	})
}

// Source reads a file line by line. It keeps no checkpoint: every run
// reads the file from the start, and idempotent sink writes absorb the
// repeat.
//
// Allocation: a batch costs a handful of allocations whatever its size,
// none per line. Its events, their meta pairs and payloads live in arrays
// owned by that batch (payload bytes in 256 KiB chunks). Once the runner
// acks the batch, nothing may reference its events any more (the Event
// contract), and the arrays are kept for a later batch instead of being
// zeroed anew: up to maxFree batches wait for reuse, the rest are left to
// the garbage collector. Id and line-number strings are made anew for
// each batch (one string per batch), never reused.
type Source struct {
	cfg  Config
	f    *os.File
	r    *bufio.Reader
	line int
	name string
	long []byte // reused to join a line longer than the read buffer
	// strsHint is the length of the last batch's id text.
	strsHint int

	mu   sync.Mutex // guards free: acks come from the runner's goroutines
	free []*batch   // acked batches, ready for reuse
}

// maxFree bounds the acked batches kept for reuse.
const maxFree = 16

// New opens the file of c.
func New(_ pipeline.BuildContext, c Config) (*Source, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, fmt.Errorf("open file source: %w", err)
	}
	return &Source{cfg: c, f: f, r: bufio.NewReaderSize(f, 256<<10), name: filepath.Base(c.Path)}, nil
}

// batch is what one Read builds: the batch's arrays.
type batch struct {
	events []pipeline.Event
	out    []*pipeline.Event
	meta   []pipeline.MetaPair
	data   []byte   // the chunk payload (and key) bytes go to; a full one is never grown
	chunks [][]byte // every chunk of the batch, data the last in use
	used   int      // chunks[:used] hold this batch's bytes
	strs   []byte   // id and line-number text, one string at the end
	offs   []strRef // per event: where its id and line number are in strs
	acks   uint64   // acks taken (guarded by Source.mu): an ack settles only its own use of b
}

// newBatch returns an acked batch to reuse, emptied, or a new one.
func (s *Source) newBatch(n int) *batch {
	s.mu.Lock()
	var b *batch
	if k := len(s.free); k > 0 {
		b, s.free[k-1] = s.free[k-1], nil
		s.free = s.free[:k-1]
	}
	s.mu.Unlock()
	if b == nil || len(b.events) != n {
		return &batch{
			events: make([]pipeline.Event, n),
			out:    make([]*pipeline.Event, 0, n),
			meta:   make([]pipeline.MetaPair, 2*n),
			offs:   make([]strRef, 0, n),
			strs:   make([]byte, 0, s.strsHint+s.strsHint/8+64),
		}
	}
	b.out, b.offs, b.strs = b.out[:0], b.offs[:0], b.strs[:0]
	b.data, b.used = nil, 0
	return b
}

// ack returns the function that settles b: once acked, its arrays are
// kept for reuse. A repeated ack does nothing, even one that comes after
// b was handed out again.
func (s *Source) ack(b *batch) pipeline.AckFunc {
	s.mu.Lock()
	gen := b.acks
	s.mu.Unlock()
	return func(error) {
		s.mu.Lock()
		if b.acks != gen {
			s.mu.Unlock()
			return
		}
		b.acks++
		if len(s.free) < maxFree {
			s.free = append(s.free, b)
		}
		s.mu.Unlock()
	}
}

// strRef is where an event's id and line number are in batch.strs: the
// id is [idStart, lineStart), or for the fallback id "<file>:<line>"
// [idStart, lineEnd); the line number is [lineStart, lineEnd).
type strRef struct {
	idStart, lineStart, lineEnd int
	fallback                    bool
}

// Read returns the next batch_size lines (blank lines are skipped) and
// io.EOF with the last of them.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	n := s.cfg.BatchSize
	b := s.newBatch(n)
	for len(b.out) < n {
		line, err := s.readLine()
		if len(line) > 0 {
			s.add(b, line)
		}
		if err == io.EOF {
			s.finish(b)
			if len(b.out) > 0 {
				return b.out, s.ack(b), io.EOF
			}
			return nil, nil, io.EOF
		}
		if err != nil {
			s.finish(b)
			return b.out, s.ack(b), pipeline.Permanent(err)
		}
	}
	s.finish(b)
	return b.out, s.ack(b), nil
}

// readLine returns the next line without its line break. The slice is
// valid until the next call.
func (s *Source) readLine() ([]byte, error) {
	long := false
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || long:
			if !long {
				s.long, long = s.long[:0], true
			}
			s.long = append(s.long, chunk...)
			line = s.long
		default:
			line = chunk
		}
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
		if long && cap(s.long) > 4<<20 {
			s.long = nil // do not keep a huge line's buffer for good
		}
		return line, err
	}
}

// add appends the event of line to b, copying the line into b's arena.
func (s *Source) add(b *batch, line []byte) {
	i := len(b.out)
	ev := &b.events[i]
	*ev = pipeline.Event{} // a reused batch's event is the last batch's
	ev.Payload = b.bytes(line)
	b.meta[2*i] = pipeline.MetaPair{Key: "file", Value: s.cfg.Path}
	b.meta[2*i+1] = pipeline.MetaPair{Key: "line"}
	ev.Meta = b.meta[2*i : 2*i+2 : 2*i+2]
	// Read without copying; what is kept is appended to the batch's text.
	text := unsafe.String(unsafe.SliceData(ev.Payload), len(ev.Payload))
	ref := strRef{idStart: len(b.strs)}
	if s.cfg.IDField != "" {
		if v := gjson.Get(text, s.cfg.IDField); v.Exists() {
			b.strs = append(b.strs, v.String()...)
		}
	}
	if len(b.strs) == ref.idStart {
		ref.fallback = true
		b.strs = append(append(b.strs, s.name...), ':')
	}
	ref.lineStart = len(b.strs)
	b.strs = strconv.AppendInt(b.strs, int64(s.line), 10)
	ref.lineEnd = len(b.strs)
	b.offs = append(b.offs, ref)
	if s.cfg.KeyField != "" {
		if v := gjson.Get(text, s.cfg.KeyField); v.Exists() {
			ev.Key = b.bytes([]byte(v.String()))
		}
	}
	if s.cfg.TimeField != "" {
		if v := gjson.Get(text, s.cfg.TimeField); v.Exists() {
			if t, err := time.Parse(time.RFC3339Nano, v.String()); err == nil {
				ev.Time = t
			}
		}
	}
	b.out = append(b.out, ev)
}

// chunkBytes is the size of the batch's payload chunks: one size, so the
// heap reuses freed chunks instead of fragmenting, and small enough that
// one long-lived event pins little.
const chunkBytes = 256 << 10

// bytes copies p into the batch's arena and returns the copy, capped so
// that an append to it cannot run into its neighbour. When the chunk is
// full the next one is begun: one the batch kept from an earlier use (its
// bytes are overwritten, not zeroed), or a new one.
func (b *batch) bytes(p []byte) []byte {
	if cap(b.data)-len(b.data) < len(p) {
		b.nextChunk(len(p))
	}
	start := len(b.data)
	b.data = append(b.data, p...)
	return b.data[start:len(b.data):len(b.data)]
}

// nextChunk makes data a chunk with room for n bytes.
func (b *batch) nextChunk(n int) {
	for b.used < len(b.chunks) {
		c := b.chunks[b.used][:0]
		b.used++
		if cap(c) >= n {
			b.data = c
			return
		}
	}
	// A chunk bigger than chunkBytes (a long line) is not kept for reuse.
	b.data = make([]byte, 0, max(n, chunkBytes))
	if n <= chunkBytes {
		b.chunks = append(b.chunks, b.data)
		b.used = len(b.chunks)
	}
}

// finish gives the batch's events their id and line-number strings, all
// pointing into one string made once for the batch.
func (s *Source) finish(b *batch) {
	if len(b.out) == 0 {
		return
	}
	s.strsHint = len(b.strs)
	text := string(b.strs)
	for i, ev := range b.out {
		r := b.offs[i]
		ev.Meta[1].Value = text[r.lineStart:r.lineEnd]
		if r.fallback {
			ev.ID = text[r.idStart:r.lineEnd]
		} else {
			ev.ID = text[r.idStart:r.lineStart]
		}
	}
}

// Close closes the file.
func (s *Source) Close(context.Context) error { return s.f.Close() }
