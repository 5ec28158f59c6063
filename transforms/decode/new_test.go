package decode

import (
	"testing"

	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// newJSON builds a JSON decoder for a test, failing it on an error.
func newJSON(tb testing.TB, c Config) *JSON {
	tb.Helper()
	d, err := NewJSON(pipelinetest.BuildContext(), c)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
