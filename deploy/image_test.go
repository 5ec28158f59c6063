package deploy

import (
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// No docker engine runs where the tests run, so the Dockerfile is checked by
// reading it, and the binary is built with its flags (sluiceBinary) and
// checked to be static, which is what lets it run on distroless/static.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var froms []string
	var user, entrypoint, copyDest string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, line)
			user = "" // USER is per stage
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = line
		case "COPY":
			if strings.HasPrefix(f[1], "--from=") {
				copyDest = f[len(f)-1]
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM lines %q", froms)
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "distroless/static") && !strings.Contains(final, "scratch") {
		t.Errorf("final stage %q: want distroless/static or scratch for a static binary", final)
	}
	if user == "" || user == "0" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0:") {
		t.Errorf("final stage runs as %q: want a non-root USER", user)
	}
	if copyDest == "" || !strings.Contains(entrypoint, `"`+copyDest+`"`) {
		t.Errorf("ENTRYPOINT %q does not run the binary copied to %q", entrypoint, copyDest)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/sluice"} {
		if !strings.Contains(text, want) {
			t.Errorf("the build step lacks %s", want)
		}
	}

	// The builder's Go must be able to build the module.
	m := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no ARG GO_VERSION=… in the Dockerfile")
	}
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	need := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if need == nil {
		t.Fatal("go.mod has no go line")
	}
	if tc := regexp.MustCompile(`(?m)^toolchain go(\S+)`).FindSubmatch(gomod); tc != nil {
		need = tc
	}
	if compareVersions(m[1], string(need[1])) < 0 {
		t.Errorf("Dockerfile GO_VERSION %s is older than go.mod needs (%s)", m[1], need[1])
	}
}

// compareVersions compares dotted release numbers like 1.26.8.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(sluiceBinary(t))
	if err != nil {
		t.Skipf("not an ELF binary on this platform: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary has a dynamic loader (PT_INTERP): it would not run on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary links %v dynamically", libs)
	}
}
