package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBenchChaosRefusesBadSchedules: an unknown fault class, a bad range,
// a schedule that cannot be honoured, or a stream the profile does not
// drive is refused up front, exit 1, before any server is contacted.
func TestBenchChaosRefusesBadSchedules(t *testing.T) {
	t.Setenv("SLUICE_KAFKA_BROKERS", "127.0.0.1:1") // nothing listens: a refusal must come first
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--faults", "kill9,meteor"}, `unknown fault class "meteor"`},
		{[]string{"--faults", "kill9,kill9"}, "listed twice"},
		{[]string{"--fault-every", "15s-5s"}, "MIN <= MAX"},
		{[]string{"--fault-every", "soon"}, "fault-every"},
		{[]string{"--duration", "3s", "--fault-every", "5s"}, "no fault would be injected"},
		{[]string{"--consumers", "0"}, "at least one consumer"},
		{[]string{"--stream", "pulsar"}, "drives kafka or kinesis"},
		{[]string{"--stream", "kinesis", "--faults", "kill9,broker-kill"}, "broker-kill does not apply to --stream kinesis"},
		{[]string{"--faults", "kill9,split"}, "split does not apply to --stream kafka"},
		{[]string{"--restart-cmd", "mongo"}, "want NAME=COMMAND"},
		{[]string{"--faults", "store-stall", "--stall", "0s"}, "positive duration"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"bench", "--profile", "chaos", "--out", t.TempDir()}, tc.args...)
		if code := execute(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// A bench that would start child processes from a Go test binary refuses
// instead: the children would run the tests again, and start children.
func TestBenchNeverStartsATestBinaryAsItsChildren(t *testing.T) {
	t.Setenv("SLUICE_BIN", "")
	t.Setenv("SLUICE_KAFKA_BROKERS", "127.0.0.1:1")
	var stdout, stderr bytes.Buffer
	code := execute([]string{"bench", "--profile", "chaos", "--out", t.TempDir(), "--duration", "30s", "--fault-every", "5s"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "Go test binary") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and a refusal to start a Go test binary", code, stderr.String())
	}
	if b, err := sluiceBinary(); err == nil {
		t.Fatalf("sluiceBinary() = %q in a test binary, want an error", b)
	}
	t.Setenv("SLUICE_BIN", "/opt/sluice/bin/sluice")
	if b, err := sluiceBinary(); err != nil || b != "/opt/sluice/bin/sluice" {
		t.Fatalf("sluiceBinary() = %q, %v; want $SLUICE_BIN", b, err)
	}
}
