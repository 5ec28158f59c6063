package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/replay"
	"github.com/sluicehq/sluice/pipeline"
)

func deadLetterLine(t testing.TB, dl pipeline.DeadLetter) []byte {
	b, err := json.Marshal(&dl)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestFileDryRunAndFilter: a dead-letter file is read up to its size at
// start; the table counts per reason what the filter accepts.
func TestFileDryRunAndFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	var buf bytes.Buffer
	now := time.Now().UTC()
	for i, c := range []struct{ reason, component string }{
		{"invalid character 'o'", "transforms[0].decode"},
		{"invalid character 'o'", "transforms[0].decode"},
		{"mapper_parsing_exception", "sinks[0].elasticsearch"},
	} {
		buf.Write(deadLetterLine(t, pipeline.DeadLetter{ID: "e" + string(rune('0'+i)), Reason: c.reason, Component: c.component, Attempts: 1, FailedAt: now, PayloadBase64: "AP8=", Meta: map[string]string{"kafka.header.trace": "x"}}))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		filter                 string
		matched, skipped, rows int
	}{
		{"all", "", 3, 0, 2},
		{"by component", `component startsWith "transforms"`, 2, 1, 1},
		{"by header", `headers["trace"] == "x" && attempts == 1`, 3, 0, 2},
		{"by time", `failed_at > now() - duration("1h")`, 3, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := replay.Run(context.Background(), replay.Options{FromFile: path, DryRun: true, Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			if s.Read != 3 || s.Matched != int64(tc.matched) || s.Skipped != int64(tc.skipped) || len(s.ByReason) != tc.rows {
				t.Fatalf("summary %+v", s)
			}
			var out bytes.Buffer
			replay.WriteSummary(&out, s, true)
			if !strings.Contains(out.String(), "COUNT") || !strings.Contains(out.String(), "would be replayed") {
				t.Errorf("table:\n%s", out.String())
			}
		})
	}
}

func TestBadInputIsAnError(t *testing.T) {
	dir := t.TempDir()
	notDL := filepath.Join(dir, "x.jsonl")
	if err := os.WriteFile(notDL, []byte("{\"id\":\"a\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    replay.Options
		want string
	}{
		{"no from", replay.Options{DryRun: true}, "one of them"},
		{"no target", replay.Options{FromFile: notDL}, "target topic or a pipeline"},
		{"bad filter", replay.Options{FromFile: notDL, DryRun: true, Filter: "reason +"}, "--filter"},
		{"not a dead letter", replay.Options{FromFile: notDL, DryRun: true}, "x.jsonl:1: not a dead letter"},
		{"topic without brokers", replay.Options{FromTopic: "t", DryRun: true}, "brokers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := replay.Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// FuzzFileReplay: any file content ends in a summary or a clear error,
// never a panic.
func FuzzFileReplay(f *testing.F) {
	f.Add(deadLetterLine(f, pipeline.DeadLetter{ID: "a", Reason: "r", PayloadText: "x"}))
	f.Add([]byte("{\"id\":\"a\",\"reason\":\"r\",\"payload_base64\":\"!!\"}\n"))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "dead.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := replay.Run(context.Background(), replay.Options{FromFile: path, DryRun: true})
		if err == nil && s.Read != s.Matched+s.Skipped {
			t.Fatalf("summary does not add up: %+v", s)
		}
	})
}
