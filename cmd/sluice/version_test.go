package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribeVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{"no build info", "dev", nil, "dev"},
		{"go install of a tag", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}}, "v0.1.0 (go1.26.8)"},
		{"go build in a dirty checkout", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("0a58a69c1f2e3d4b5a6978877665544332211000", "true")}, "dev (rev 0a58a69c1f2e, modified, go1.26.8)"},
		{"go build in a clean checkout, pseudo-version", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.1-0.20261203154442-0a58a69c1f2e"}, Settings: vcs("0a58a69c1f2e3d4b", "false")}, "v0.1.1-0.20261203154442-0a58a69c1f2e (rev 0a58a69c1f2e, go1.26.8)"},
		{"ldflags win over the module version", "v0.2.0-rc1", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}}, "v0.2.0-rc1 (go1.26.8)"},
		{"short revision kept whole", "v0.1.0", &debug.BuildInfo{Settings: vcs("abc123", "false")}, "v0.1.0 (rev abc123)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeVersion(tc.ldflags, tc.bi); got != tc.want {
				t.Fatalf("describeVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVersionCommandReadsBuildInfo(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// A test binary carries build info: at least the Go version is printed.
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build info in this binary")
	}
	if !strings.HasPrefix(out.String(), "sluice ") || !strings.Contains(out.String(), bi.GoVersion) {
		t.Fatalf("version output %q, want sluice … %s", out.String(), bi.GoVersion)
	}
}
