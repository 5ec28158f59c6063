package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestConformance runs the sink table on a file of JSON lines in the
// event format (the one that carries the id). The unreachable server is
// /dev/full: every write fails with "no space left", an outage.
func TestConformance(t *testing.T) {
	conformance.TestSink(t, func(t *testing.T) *conformance.SinkUnderTest {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		s, err := New(pipelinetest.BuildContext(), Config{Path: path, Format: FormatEvent, Fsync: true})
		if err != nil {
			t.Fatal(err)
		}
		su := &conformance.SinkUnderTest{
			Sink: s,
			Kind: conformance.Log,
			ReadBack: func(context.Context) ([]conformance.Record, error) {
				return readEventLines(path)
			},
			// Not JSON as a body: the event envelope cannot hold it.
			Poison: func(id, key string) *pipeline.Event {
				return &pipeline.Event{ID: id, Key: []byte(key), Body: []byte(`{"unterminated`)}
			},
		}
		if _, err := os.Stat("/dev/full"); err == nil {
			su.Unreachable = func(t *testing.T) pipeline.Sink {
				full, err := New(pipelinetest.BuildContext(), Config{Path: "/dev/full", Format: FormatEvent, Fsync: true})
				if err != nil {
					t.Fatal(err)
				}
				return full
			}
		}
		return su
	})
}

func readEventLines(path string) ([]conformance.Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []conformance.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e envelope
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		recs = append(recs, conformance.Record{ID: e.ID, Body: e.Body})
	}
	return recs, sc.Err()
}
