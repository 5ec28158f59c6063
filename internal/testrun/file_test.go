package testrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: a test file is outside input; any bytes give a File or an
// error with the file's name, never a panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("pipeline: p.yaml\ntests:\n  - name: x\n    input: [{json: {a: 1}}]\n    outputs: [{fields: {a: 1}, condition: 'a == 1'}]\n"))
	f.Add([]byte("pipeline: p.yaml\ntests:\n  - input: [{payload: x}]\n    dead_lettered: [{component: \"transforms[0]\", reason: r}]\n    dropped: 2\n"))
	f.Add([]byte("tests: [{outputs: [{condition: '(('}]}]\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("pipeline: [1]\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("name: x\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "t.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := Load(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if file.Pipeline == "" || len(file.Tests) == 0 {
			t.Fatalf("loaded a file without pipeline or tests: %+v", file)
		}
	})
}
