package conformance_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// suiteCatches shows the suite catches a bad component: it runs suite on
// it in a child process of this test binary (the test t, with env=1
// there) and expects the child to fail with case failing FAILed and case
// passing PASSed, so the failure is the one the bad component was written
// to show and not the whole suite breaking. bad says what the component
// does wrong.
func suiteCatches(t *testing.T, env, bad string, suite func(*testing.T), failing, passing string) {
	t.Helper()
	if os.Getenv(env) == "1" {
		suite(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed %s:\n%s", bad, out)
	}
	for _, want := range []string{"--- FAIL: " + t.Name() + "/" + failing, "--- PASS: " + t.Name() + "/" + passing} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}
