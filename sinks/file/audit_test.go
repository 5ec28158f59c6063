package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// TestAuditCounts: the bench audit's read-back counts every line by its id,
// a dead letter by the id in its original payload, and Reset removes the
// file.
func TestAuditCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	lines := `{"id":"a","n":1}
{"id":"a","n":1}
{"id":"b"}
{"id":"src/0/7","failed_at":"2026-01-02T00:00:00Z","payload_text":"{\"id\":\"poison-1\",\"broken"}
`
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var st pipeline.StoreAudit
	st, err := (&Config{Path: path}).Audit(context.Background(), "sinks[0].file")
	if err != nil {
		t.Fatal(err)
	}
	if st.Idempotent() {
		t.Error("a file is a log: Idempotent() must be false")
	}
	got, err := st.Counts(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a": 2, "b": 1, "poison-1": 1}
	if len(got) != len(want) || got["a"] != 2 || got["b"] != 1 || got["poison-1"] != 1 {
		t.Fatalf("Counts = %v, want %v", got, want)
	}
	if err := st.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Counts(context.Background(), nil); err != nil || len(got) != 0 {
		t.Fatalf("after Reset: Counts = %v, %v; want empty", got, err)
	}
}
