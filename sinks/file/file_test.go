package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestWriteFormats(t *testing.T) {
	at := time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)
	decoded := &pipeline.Event{
		ID: "e1", Key: []byte("k1"), Time: at,
		Meta:    pipeline.Meta{{Key: "file", Value: "in.jsonl"}, {Key: "line", Value: "3"}},
		Payload: []byte(`{"a": 1}`),
		Body:    []byte(`{"a":1,"b":"x"}`),
	}
	raw := &pipeline.Event{ID: "e2", Payload: []byte(`not json`)}
	pretty := &pipeline.Event{ID: "e3", Payload: []byte("{\n  \"a\": [\n    1,\n    2\n  ]\n}"), Body: []byte("{\n  \"a\": [\n    1,\n    2\n  ]\n}")}
	prettyPayload := &pipeline.Event{ID: "e4", Payload: []byte("{\n \"p\": true\n}")}
	textNL := &pipeline.Event{ID: "e5", Payload: []byte("line one\nline \"two\"\r\n")}
	batch := []*pipeline.Event{decoded, raw, pretty, prettyPayload, textNL}

	tests := []struct {
		format Format
		want   []string
	}{
		{FormatBody, []string{
			`{"a":1,"b":"x"}`,
			`not json`,
			`{"a":[1,2]}`,
			`{"p":true}`,
			`"line one\nline \"two\"\r\n"`,
		}},
		{FormatPayload, []string{
			`{"a": 1}`,
			`not json`,
			// The payload format writes bytes as received, line breaks
			// included: it is for single-line payloads.
		}},
		{FormatEvent, []string{
			`{"id":"e1","key":"k1","time":"2024-03-01T09:30:00Z","meta":{"file":"in.jsonl","line":"3"},"body":{"a":1,"b":"x"}}`,
			`{"id":"e2","payload":"not json"}`,
			`{"id":"e3","body":{"a":[1,2]}}`,
			`{"id":"e4","payload":"{\n \"p\": true\n}"}`,
			`{"id":"e5","payload":"line one\nline \"two\"\r\n"}`,
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			var buf bytes.Buffer
			s := NewWriter(&buf, tt.format, nil)
			in := batch
			if tt.format == FormatPayload {
				in = batch[:2]
			}
			if err := s.Write(context.Background(), in); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := lines(buf.String())
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tt.want), buf.String())
			}
			for i := range got {
				if tt.format == FormatEvent {
					// Compare as JSON: field order of meta is a map's.
					var g, w any
					if err := json.Unmarshal([]byte(got[i]), &g); err != nil {
						t.Fatalf("line %d is not JSON: %s", i, got[i])
					}
					if err := json.Unmarshal([]byte(tt.want[i]), &w); err != nil {
						t.Fatal(err)
					}
					gb, _ := json.Marshal(g)
					wb, _ := json.Marshal(w)
					if string(gb) != string(wb) {
						t.Errorf("line %d = %s, want %s", i, got[i], tt.want[i])
					}
					continue
				}
				if got[i] != tt.want[i] {
					t.Errorf("line %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
			if !strings.HasSuffix(buf.String(), "\n") {
				t.Error("output does not end with a newline")
			}
		})
	}
}

func TestWriteEventEnvelopeRoundTrips(t *testing.T) {
	ev := &pipeline.Event{
		ID: "evt_1", Key: []byte("salesforce:42"),
		Time:    time.Date(2024, 3, 1, 9, 30, 0, 123000000, time.FixedZone("x", 3600)),
		Meta:    pipeline.Meta{{Key: "topic", Value: "crm"}, {Key: "partition", Value: "3"}},
		Payload: []byte(`{"x":1}`), Body: []byte(`{"x":1,"added":true}`),
	}
	var buf bytes.Buffer
	if err := NewWriter(&buf, FormatEvent, nil).Write(context.Background(), []*pipeline.Event{ev}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID      string            `json:"id"`
		Key     string            `json:"key"`
		Time    time.Time         `json:"time"`
		Meta    map[string]string `json:"meta"`
		Body    json.RawMessage   `json:"body"`
		Payload *string           `json:"payload"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Key != string(ev.Key) || !got.Time.Equal(ev.Time) ||
		got.Meta["topic"] != "crm" || got.Meta["partition"] != "3" || len(got.Meta) != 2 ||
		string(got.Body) != string(ev.Body) || got.Payload != nil {
		t.Errorf("envelope %s does not match the event", buf.String())
	}
}

func TestFileSinkAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	for _, fsync := range []bool{true, false} {
		c := Config{Path: path}
		c.SetDefaults()
		c.Fsync = fsync
		s, err := New(pipelinetest.BuildContext(), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b"} {
			ev := &pipeline.Event{ID: id, Payload: []byte(`{"id":"` + id + `"}`)}
			if err := s.Write(context.Background(), []*pipeline.Event{ev, ev}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Write(context.Background(), nil); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat(`{"id":"a"}`+"\n"+`{"id":"a"}`+"\n"+`{"id":"b"}`+"\n"+`{"id":"b"}`+"\n", 2)
	if string(data) != want {
		t.Errorf("file holds\n%s\nwant\n%s", data, want)
	}
}

func TestFileSinkOpenError(t *testing.T) {
	c := Config{Path: filepath.Join(t.TempDir(), "missing-dir", "out.jsonl")}
	c.SetDefaults()
	if _, err := New(pipelinetest.BuildContext(), c); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenFile in a missing directory = %v", err)
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	c := Config{Path: filepath.Join(t.TempDir(), "out.jsonl")}
	c.SetDefaults()
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []*pipeline.Event{{ID: "x", Payload: []byte("{}")}}); err == nil {
		t.Error("Write after Close succeeded")
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrorIsRetryable(t *testing.T) {
	boom := errors.New("disk full")
	s := NewWriter(failingWriter{boom}, FormatBody, nil)
	err := s.Write(context.Background(), []*pipeline.Event{{ID: "x", Payload: []byte("{}")}})
	if !errors.Is(err, boom) || pipeline.IsPermanent(err) {
		t.Errorf("Write = %v, want the retryable write error", err)
	}
}

func TestStdoutSinkClose(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriter(&buf, FormatBody, nil)
	if err := s.Write(context.Background(), []*pipeline.Event{{ID: "x", Payload: []byte(`{"a":1}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close without a close func: %v", err)
	}
	if buf.String() != `{"a":1}`+"\n" {
		t.Errorf("wrote %q", buf.String())
	}
}

func TestConcurrentWritesKeepLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriter(&buf, FormatBody, nil)
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func() {
			var err error
			for i := 0; i < 50 && err == nil; i++ {
				err = s.Write(context.Background(), []*pipeline.Event{{ID: "x", Payload: []byte(`{"g":"` + strings.Repeat("z", 100) + `"}`)}})
			}
			done <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := `{"g":"` + strings.Repeat("z", 100) + `"}`
	got := lines(buf.String())
	if len(got) != 400 {
		t.Fatalf("%d lines, want 400", len(got))
	}
	for i, l := range got {
		if l != want {
			t.Fatalf("line %d mangled: %q", i, l)
		}
	}
}

func TestValidateFormat(t *testing.T) {
	for _, f := range []Format{FormatBody, FormatPayload, FormatEvent} {
		if err := (&Config{Path: "x", Format: f}).Validate(); err != nil {
			t.Errorf("file format %q: %v", f, err)
		}
		if err := (&StdoutConfig{Format: f}).Validate(); err != nil {
			t.Errorf("stdout format %q: %v", f, err)
		}
	}
	for _, f := range []Format{"", "json", "BODY"} {
		var fe *pipeline.FieldError
		if err := (&Config{Path: "x", Format: f}).Validate(); !errors.As(err, &fe) || fe.Field != "format" {
			t.Errorf("file format %q: %v, want a format FieldError", f, err)
		}
		if err := (&StdoutConfig{Format: f}).Validate(); !errors.As(err, &fe) || fe.Field != "format" {
			t.Errorf("stdout format %q: %v, want a format FieldError", f, err)
		}
	}
}
