package testenv

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	in := `# comment
export SLUICE_A=127.0.0.1:1

SLUICE_B="quoted value"
export SLUICE_C='single'
not a pair
`
	want := map[string]string{"SLUICE_A": "127.0.0.1:1", "SLUICE_B": "quoted value", "SLUICE_C": "single"}
	if got := parseEnvFile(strings.NewReader(in)); !reflect.DeepEqual(got, want) {
		t.Fatalf("parseEnvFile = %v, want %v", got, want)
	}
}

func TestReadEnvFileFrom(t *testing.T) {
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	mod := filepath.Join(root, "repo")
	write(filepath.Join(mod, "go.mod"), "module x\n")
	write(filepath.Join(mod, ".testenv", "env"), "export SLUICE_REDIS_ADDR=127.0.0.1:9\n")
	write(filepath.Join(root, ".testenv", "env"), "export SLUICE_REDIS_ADDR=outside-module\n")
	other := filepath.Join(root, "other")
	write(filepath.Join(other, "go.mod"), "module y\n")

	tests := []struct {
		name, dir, want string
	}{
		{"module root", mod, "127.0.0.1:9"},
		{"package dir below root", filepath.Join(mod, "a", "b"), "127.0.0.1:9"},
		{"stops at go.mod", filepath.Join(other, "pkg"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(tc.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if got := readEnvFileFrom(tc.dir)["SLUICE_REDIS_ADDR"]; got != tc.want {
				t.Fatalf("SLUICE_REDIS_ADDR = %q, want %q", got, tc.want)
			}
		})
	}
}
