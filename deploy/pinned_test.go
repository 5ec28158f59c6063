package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// baseImageRef is name[:tag][@sha256:digest] after FROM [--platform=…].
var baseImageRef = regexp.MustCompile(`^([^:@\s]+(?::\d+)?/)?[^:@\s]+(:([^@\s]+))?(@sha256:([0-9a-f]*))?$`)

// TestDockerfileBaseImagesPinned: every base image names an explicit version
// (no bare name, no :latest), the Go image its patch release and Debian
// release, and a digest, when there is one, is a whole sha256.
func TestDockerfileBaseImagesPinned(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	goVersion := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(text)
	if goVersion == nil || !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(goVersion[1]) {
		t.Fatalf("ARG GO_VERSION %v: want a patch release like 1.26.8", goVersion)
	}
	n := 0
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.ToUpper(f[0]) != "FROM" {
			continue
		}
		n++
		ref := f[1]
		if strings.HasPrefix(ref, "--platform=") {
			ref = f[2]
		}
		ref = strings.ReplaceAll(ref, "${GO_VERSION}", goVersion[1])
		m := baseImageRef.FindStringSubmatch(ref)
		if m == nil {
			t.Errorf("FROM %s: not an image reference", ref)
			continue
		}
		tag, digest := m[3], m[4]
		if tag == "" && digest == "" || tag == "latest" {
			t.Errorf("FROM %s: pin an explicit version tag", ref)
		}
		if digest != "" && len(m[5]) != 64 {
			t.Errorf("FROM %s: a digest is sha256 and 64 hex digits", ref)
		}
		if strings.HasPrefix(ref, "golang:") && !regexp.MustCompile(`^golang:\d+\.\d+\.\d+-(bookworm|trixie|alpine\d+\.\d+)`).MatchString(ref) {
			t.Errorf("FROM %s: want golang:<patch release>-<distribution release>", ref)
		}
		if strings.Contains(ref, "distroless/static") && !regexp.MustCompile(`distroless/static-debian\d+:`).MatchString(ref) {
			t.Errorf("FROM %s: want the Debian release in the distroless name", ref)
		}
	}
	if n < 2 {
		t.Fatalf("found %d FROM lines", n)
	}
}
