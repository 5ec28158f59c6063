package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTopOnceAgainstARunningPipeline(t *testing.T) {
	_, url := startTapped(t, tappedYAML(t.TempDir(), false))
	var out, errOut bytes.Buffer
	// Two replicas: the same pipeline twice sums to twice its rates.
	if code := execute([]string{"top", "--once", "--interval", "300ms", url, strings.TrimPrefix(url, "http://") + "/metrics"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"2/2 replicas", "pipeline tapped", "source.generate", "transforms[1].enrich", "sinks[0].file", "◀ bottleneck"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("top lacks %q:\n%s", want, out.String())
		}
	}
}

func TestTopWrongAddress(t *testing.T) {
	srv := httptest.NewServer(nil) // 404 everywhere: not a metrics server
	defer srv.Close()
	dead := httptest.NewServer(nil)
	dead.Close()
	for _, tc := range []struct{ url, want string }{
		{dead.URL, "no pipeline answers: " + dead.URL + "/metrics: no answer"},
		{srv.URL, "404 Not Found (is this a sluice metrics address?)"},
		{"http://", "is not an address"},
	} {
		var out, errOut bytes.Buffer
		code := execute([]string{"top", "--once", tc.url}, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) || strings.Count(strings.TrimSpace(errOut.String()), "\n") > 0 {
			t.Errorf("top %s: exit %d, stderr %q, want one line with %q", tc.url, code, errOut.String(), tc.want)
		}
	}
}
