package file

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func config(path string) Config {
	c := Config{Path: path}
	c.SetDefaults()
	return c
}

// readAll reads until io.EOF and returns the events and the batch sizes.
func readAll(t *testing.T, s *Source) ([]*pipeline.Event, []int) {
	t.Helper()
	var all []*pipeline.Event
	var sizes []int
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("no io.EOF after 1000 reads")
		}
		batch, ack, err := s.Read(context.Background())
		if len(batch) > 0 {
			if ack == nil {
				t.Fatal("batch without an ack")
			}
			// Acked when the test ends: an acked batch's arrays are
			// reused, and the caller still reads these events.
			t.Cleanup(func() { ack(nil) })
			sizes = append(sizes, len(batch))
			all = append(all, batch...)
		}
		if errors.Is(err, io.EOF) {
			return all, sizes
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(batch) == 0 {
			t.Fatal("empty batch without EOF")
		}
	}
}

func TestReadLines(t *testing.T) {
	tests := []struct {
		name    string
		content string
		cfg     func(*Config)
		ids     []string
		keys    []string
		payload []string
		lines   []string
		times   []time.Time
	}{
		{
			name:    "ids from id field",
			content: `{"id":"a","k":1}` + "\n" + `{"id":"b"}` + "\n",
			ids:     []string{"a", "b"},
			payload: []string{`{"id":"a","k":1}`, `{"id":"b"}`},
			lines:   []string{"1", "2"},
		},
		{
			name:    "fallback id is basename and line",
			content: `{"x":1}` + "\n" + `{"id":""}` + "\n" + `{"id":"c"}` + "\n" + `not json` + "\n",
			ids:     []string{"events.jsonl:1", "events.jsonl:2", "c", "events.jsonl:4"},
			payload: []string{`{"x":1}`, `{"id":""}`, `{"id":"c"}`, `not json`},
		},
		{
			name:    "custom id field nested and numeric",
			content: `{"meta":{"uid":42}}` + "\n" + `{"meta":{}}` + "\n",
			cfg:     func(c *Config) { c.IDField = "meta.uid" },
			ids:     []string{"42", "events.jsonl:2"},
		},
		{
			name:    "no id field",
			content: `{"id":"ignored"}` + "\n",
			cfg:     func(c *Config) { c.IDField = "" },
			ids:     []string{"events.jsonl:1"},
		},
		{
			name:    "blank lines skipped but counted",
			content: "\n" + `{"a":1}` + "\n\n\r\n" + `{"a":2}` + "\n\n",
			ids:     []string{"events.jsonl:2", "events.jsonl:5"},
			payload: []string{`{"a":1}`, `{"a":2}`},
			lines:   []string{"2", "5"},
		},
		{
			name:    "CRLF",
			content: "{\"id\":\"a\"}\r\n{\"id\":\"b\"}\r\n",
			ids:     []string{"a", "b"},
			payload: []string{`{"id":"a"}`, `{"id":"b"}`},
		},
		{
			name:    "last line without newline",
			content: `{"id":"a"}` + "\n" + `{"id":"b"}`,
			ids:     []string{"a", "b"},
			payload: []string{`{"id":"a"}`, `{"id":"b"}`},
			lines:   []string{"1", "2"},
		},
		{
			name:    "keys",
			content: `{"id":"a","acct":"x"}` + "\n" + `{"id":"b"}` + "\n" + `{"id":"c","acct":7}` + "\n",
			cfg:     func(c *Config) { c.KeyField = "acct" },
			ids:     []string{"a", "b", "c"},
			keys:    []string{"x", "", "7"},
		},
		{
			name: "times",
			content: `{"ts":"2024-03-01T09:30:00Z"}` + "\n" + `{"ts":"2024-03-01T11:30:00.5+02:00"}` + "\n" +
				`{"ts":"yesterday"}` + "\n" + `{"other":1}` + "\n",
			cfg: func(c *Config) { c.TimeField = "ts" },
			times: []time.Time{
				time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
				time.Date(2024, 3, 1, 9, 30, 0, 500_000_000, time.UTC),
				{}, {},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "events.jsonl", tt.content)
			c := config(path)
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			s, err := New(pipelinetest.BuildContext(), c)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			evs, _ := readAll(t, s)
			n := max(len(tt.ids), len(tt.payload), len(tt.keys), len(tt.times))
			if len(evs) != n {
				t.Fatalf("got %d events, want %d", len(evs), n)
			}
			for i, ev := range evs {
				if tt.ids != nil && ev.ID != tt.ids[i] {
					t.Errorf("event %d: ID %q, want %q", i, ev.ID, tt.ids[i])
				}
				if tt.payload != nil && string(ev.Payload) != tt.payload[i] {
					t.Errorf("event %d: payload %q, want %q", i, ev.Payload, tt.payload[i])
				}
				if tt.keys != nil && string(ev.Key) != tt.keys[i] {
					t.Errorf("event %d: key %q, want %q", i, ev.Key, tt.keys[i])
				}
				if tt.times != nil && !ev.Time.Equal(tt.times[i]) {
					t.Errorf("event %d: time %v, want %v", i, ev.Time, tt.times[i])
				}
				if f, _ := ev.Meta.Get("file"); f != path {
					t.Errorf("event %d: meta file %q, want %q", i, f, path)
				}
				if tt.lines != nil {
					if l, _ := ev.Meta.Get("line"); l != tt.lines[i] {
						t.Errorf("event %d: meta line %q, want %q", i, l, tt.lines[i])
					}
				}
				if ev.Body != nil {
					t.Errorf("event %d: source set a body", i)
				}
			}
		})
	}
}

func TestBatchSizeAndEOF(t *testing.T) {
	tests := []struct {
		lines, batch int
		sizes        []int
	}{
		{lines: 10, batch: 3, sizes: []int{3, 3, 3, 1}},
		{lines: 9, batch: 3, sizes: []int{3, 3, 3}},
		{lines: 1, batch: 500, sizes: []int{1}},
		{lines: 0, batch: 5, sizes: nil},
	}
	for _, tt := range tests {
		var sb strings.Builder
		for i := 0; i < tt.lines; i++ {
			sb.WriteString(`{"n":` + strconv.Itoa(i) + "}\n")
		}
		c := config(writeFile(t, "b.jsonl", sb.String()))
		c.BatchSize = tt.batch
		s, err := New(pipelinetest.BuildContext(), c)
		if err != nil {
			t.Fatal(err)
		}
		evs, sizes := readAll(t, s)
		if len(evs) != tt.lines {
			t.Errorf("%d lines batch %d: %d events", tt.lines, tt.batch, len(evs))
		}
		if !slices.Equal(sizes, tt.sizes) {
			t.Errorf("%d lines batch %d: batch sizes %v, want %v", tt.lines, tt.batch, sizes, tt.sizes)
		}
		// Reading on after the end keeps answering io.EOF with nothing.
		if b, _, err := s.Read(context.Background()); !errors.Is(err, io.EOF) || len(b) != 0 {
			t.Errorf("read after EOF: %d events, %v", len(b), err)
		}
		s.Close(context.Background())
	}
}

func TestEOFComesWithTheLastBatch(t *testing.T) {
	c := config(writeFile(t, "e.jsonl", "{\"a\":1}\n{\"a\":2}\n"))
	c.BatchSize = 10
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	batch, ack, err := s.Read(context.Background())
	if !errors.Is(err, io.EOF) || len(batch) != 2 || ack == nil {
		t.Fatalf("Read = %d events, ack %v, err %v; want both lines with io.EOF", len(batch), ack != nil, err)
	}
}

func TestLongLine(t *testing.T) {
	long := `{"id":"long","pad":"` + strings.Repeat("x", 3000) + `"}`
	tests := []struct {
		name    string
		content string
		before  int    // events returned before the error
		line    string // file:line in the message
	}{
		{"first line", long + "\n" + `{"id":"a"}` + "\n", 0, ":1:"},
		{"after good lines", `{"id":"a"}` + "\n\n" + `{"id":"b"}` + "\n" + long + "\n", 2, ":4:"},
		{"last line without newline", `{"id":"a"}` + "\n" + long, 1, ":2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "long.jsonl", tt.content)
			c := config(path)
			c.MaxLineBytes = 1024
			s, err := New(pipelinetest.BuildContext(), c)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			batch, _, err := s.Read(context.Background())
			if err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("Read err = %v, want a line-length error", err)
			}
			if !pipeline.IsPermanent(err) {
				t.Errorf("error is not permanent: %v", err)
			}
			if !strings.Contains(err.Error(), path+tt.line) || !strings.Contains(err.Error(), "max_line_bytes") {
				t.Errorf("error %q does not name %s%s and max_line_bytes", err, path, tt.line)
			}
			if len(batch) != tt.before {
				t.Errorf("%d events before the error, want %d", len(batch), tt.before)
			}
		})
	}
}

func TestLineJustUnderLimit(t *testing.T) {
	// A line of exactly max_line_bytes plus its newline is fine; bufio's
	// buffer is smaller than the limit here too, so the line spans chunks.
	body := `{"id":"big","pad":"` + strings.Repeat("y", 300<<10) + `"}`
	c := config(writeFile(t, "big.jsonl", body+"\n"+`{"id":"next"}`+"\n"))
	c.MaxLineBytes = pipeline.ByteSize(len(body) + 1)
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	evs, _ := readAll(t, s)
	if len(evs) != 2 || evs[0].ID != "big" || string(evs[0].Payload) != body || evs[1].ID != "next" {
		t.Fatalf("got %d events (first id %q, %d bytes)", len(evs), evs[0].ID, len(evs[0].Payload))
	}
}

func TestReadHonoursContext(t *testing.T) {
	c := config(writeFile(t, "c.jsonl", "{}\n"))
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read on cancelled context = %v", err)
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := New(pipelinetest.BuildContext(), config(filepath.Join(t.TempDir(), "nope.jsonl"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file = %v, want ErrNotExist", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		mod    func(*Config)
		fields []string
	}{
		{func(*Config) {}, nil},
		{func(c *Config) { c.BatchSize = 0 }, []string{"batch_size"}},
		{func(c *Config) { c.MaxLineBytes = 1023 }, []string{"max_line_bytes"}},
		{func(c *Config) { c.BatchSize, c.MaxLineBytes = -1, 0 }, []string{"batch_size", "max_line_bytes"}},
	}
	for i, tt := range tests {
		c := config("x")
		tt.mod(&c)
		err := c.Validate()
		var got []string
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *pipeline.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("case %d: %v is not a FieldError", i, e)
				}
				got = append(got, fe.Field)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
			t.Errorf("case %d: fields %v, want %v", i, got, tt.fields)
		}
	}
}
