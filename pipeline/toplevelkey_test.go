package pipeline_test

import (
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// TestIsTopLevelKey: literal member names pass; anything gjson reads as
// path syntax, and the empty path, do not.
func TestIsTopLevelKey(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"id", true},
		{"occurred_at", true},
		{"x-request-id", true},
		{"0", true}, // a member named "0" to gjson on an object
		{"-", true},
		{"Key2", true},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{"a?", false},
		{"#", false},
		{"a|b", false},
		{"@this", false},
		{`a\.b`, false},
		{"é", false},
		{"a b", false},
	} {
		if got := pipeline.IsTopLevelKey(tc.path); got != tc.want {
			t.Errorf("IsTopLevelKey(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
