package webhooks_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A body nested past pipeline.DefaultMaxJSONDepth is answered 400 before
// any parser or signature check looks at it, and nothing is written.
func TestDeeplyNestedBodyIs400(t *testing.T) {
	h := startPipeline(t, allProviders, nil)
	extra := func(n int) []byte {
		// A token of its own per body: a reused one is a replay (401).
		valid := mailgunBody(mailgunKey, fmt.Sprintf("tok-deep-%d", n), time.Now(), "mg-deep", "opened", "x@y.z")
		return bytes.Replace(valid, []byte(`"event-data":{`), []byte(`"event-data":{"x":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`,`), 1)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"600 levels", extra(600), 400},
		{"15 KiB of [", []byte(strings.Repeat("[", 15<<10)), 400},
		{"100 levels", extra(100), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.post(t, "/webhooks/mailgun", tc.body, nil); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}
	if n := len(h.sink.Writes()); n != 1 {
		t.Fatalf("%d writes, want 1 (the 100-level body)", n)
	}
}
