package poller_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
)

// A vendor answer nested past pipeline.DefaultMaxJSONDepth is a permanent
// error before any connector decodes it: retrying gets the same page.
func TestDoRefusesDeeplyNestedBodies(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		err  bool
	}{
		{"flat page", `{"records":[{"Id":"1"}]}`, false},
		{"a megabyte of [", strings.Repeat("[", 1<<20), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/page", nil)
			_, body, err := poller.Do(context.Background(), srv.Client(), req)
			if !tc.err {
				if err != nil || string(body) != tc.body {
					t.Fatalf("Do = %q, %v", body, err)
				}
				return
			}
			if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "nested deeper than 512") {
				t.Fatalf("Do error = %v, want a permanent depth error", err)
			}
		})
	}
}
