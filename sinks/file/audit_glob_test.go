package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/sinks/file"
)

// TestAuditGlob: a path with a glob pattern (the chaos bench's consumers
// write one dead-letter file each) is read back, and reset, as every file
// it matches.
func TestAuditGlob(t *testing.T) {
	dir := t.TempDir()
	for i, lines := range []string{`{"id":"a"}` + "\n" + `{"id":"b"}` + "\n", `{"id":"a"}` + "\n"} {
		sub := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "dl.jsonl"), []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &file.Config{Path: filepath.Join(dir, "*", "dl.jsonl")}
	a, err := c.Audit(context.Background(), "dead_letter")
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Counts(context.Background(), nil)
	if err != nil || got["a"] != 2 || got["b"] != 1 || len(got) != 2 {
		t.Fatalf("counts = %v, %v", got, err)
	}
	if err := a.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Counts(context.Background(), nil); len(got) != 0 {
		t.Fatalf("after reset: %v", got)
	}
}
