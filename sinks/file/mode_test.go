package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// The file sink creates its file owner-only (0600) unless `mode` says
// otherwise, whatever the umask; an existing file keeps its mode.
func TestFileSinkMode(t *testing.T) {
	reg := pipeline.NewRegistry()
	Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource())
	for _, tc := range []struct {
		name, mode string
		want       os.FileMode
		err        string
	}{
		{"default", "", 0o600, ""},
		{"group-readable", "mode: \"0640\"", 0o640, ""},
		{"unquoted", "mode: 0660", 0o660, ""},
		{"0o prefix", "mode: 0o644", 0o644, ""},
		{"not octal", "mode: rw-r--r--", 0, "mode: expected permission bits in octal"},
		{"too wide", "mode: \"01777\"", 0, "mode: expected permission bits in octal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			yml := "name: m\nsource: {mem: {}}\nsinks:\n  - file: {path: " + path + "}\n"
			if tc.mode != "" {
				yml = "name: m\nsource: {mem: {}}\nsinks:\n  - file: {path: " + path + ", " + tc.mode + "}\n"
			}
			cfg, err := pipeline.Load("m.yaml", []byte(yml), reg, func(string) (string, bool) { return "", false })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "m.yaml:4") {
					t.Fatalf("Load = %v, want %q at m.yaml:4", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(pipelinetest.BuildContext(), *cfg.Sinks[0].Config.(*Config))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Fatalf("created with %#o, want %#o", got, tc.want)
			}
		})
	}
	// An existing file is appended to as it is: its mode is the owner's call.
	path := filepath.Join(t.TempDir(), "existing.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := Config{Path: path}
	c.SetDefaults()
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("existing file's mode changed to %#o", fi.Mode().Perm())
	}
}
