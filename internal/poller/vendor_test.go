package poller_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
)

// TestChecks: the shared field checks name the key and say what is wrong,
// and pass (nil) what is fine.
func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" = nil
	}{
		{"required set", poller.CheckRequired("api_key", "k"), ""},
		{"required empty", poller.CheckRequired("api_key", ""), "api_key: must not be empty"},
		{"url", poller.CheckBaseURL("base_url", "https://api.example.com/v1"), ""},
		{"url without host", poller.CheckBaseURL("base_url", "/v1"), `base_url: must be a URL; got "/v1"`},
		{"url unparsable", poller.CheckBaseURL("base_url", "http://[::1"), `base_url: must be a URL; got "http://[::1"`},
		{"page size low end", poller.CheckPageSize("limit", 1, 100), ""},
		{"page size high end", poller.CheckPageSize("limit", 100, 100), ""},
		{"page size 0", poller.CheckPageSize("limit", 0, 100), "limit: must be 1 to 100"},
		{"page size over", poller.CheckPageSize("per_page", 501, 500), "per_page: must be 1 to 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if tc.err != nil {
					t.Fatalf("got %v, want nil", tc.err)
				}
				return
			}
			if tc.err == nil || tc.err.Error() != tc.want {
				t.Fatalf("got %v, want %q", tc.err, tc.want)
			}
		})
	}
}

// TestRegisterAndNewSource: a vendor registered through poller.Register is
// built from its YAML into a source that polls the vendor's objects with
// its client, and its events carry the vendor's name and object (in the
// event id).
func TestRegisterAndNewSource(t *testing.T) {
	type vendorConfig struct {
		poller.Config `yaml:",inline"`
	}
	cl := &pages{steps: []func(q poller.Query) (poller.Page, error){
		func(q poller.Query) (poller.Page, error) {
			return poller.Page{Records: []poller.Record{{ID: "r1", Stamp: t0, Type: q.Object + ".updated", Data: []byte(`{"id":"r1"}`)}}}, nil
		},
	}}
	register := func(r *pipeline.Registry) {
		poller.Register(r, "toyvendor", "a vendor for the test", func(bc pipeline.BuildContext, c vendorConfig) (*poller.Source, error) {
			return c.NewSource(bc, poller.Vendor{Name: "toyvendor", Objects: []string{"widgets"}, Client: cl})
		})
	}
	file := filepath.Join(t.TempDir(), "cursors.json")
	run := pollertest.Start(t, register, fmt.Sprintf(`  toyvendor:
    interval: 10ms
    checkpoint: {key: k, file: {path: %q}}`, file), nil)
	want := poller.EventID("toyvendor", "widgets", "r1", t0)
	pollertest.WaitFor(t, "the record in the sink", func() bool { return run.Sink.IDs()[want] })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	if n := len(run.Sink.Writes()); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
}
