package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion says what this binary is: the version set with -ldflags
// "-X main.version=…" (make build, the image), else the module version Go
// recorded (go install …@v0.1.0), plus the VCS revision and whether the
// tree was modified when Go recorded them (go build in a checkout).
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return describeVersion(version, bi)
}

// describeVersion formats ldflags (the -X value, "dev" when unset) and bi
// (nil when the binary carries no build info) as
// "v0.1.0 (rev 0a58a69c1f2e, modified, go1.26.0)".
func describeVersion(ldflags string, bi *debug.BuildInfo) string {
	v := ldflags
	if bi == nil {
		return v
	}
	if (v == "" || v == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	var details []string
	var rev string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		details = append(details, "rev "+rev)
	}
	if modified {
		details = append(details, "modified")
	}
	if bi.GoVersion != "" {
		details = append(details, bi.GoVersion)
	}
	if len(details) == 0 {
		return v
	}
	return v + " (" + strings.Join(details, ", ") + ")"
}
