package pipeline

import (
	"strings"
	"testing"
)

func TestWithKeySuccessors(t *testing.T) {
	mk := func(spec string) []*Event {
		var out []*Event
		for _, f := range strings.Fields(spec) {
			key, id, _ := strings.Cut(f, ":")
			out = append(out, &Event{ID: id, Key: []byte(key)})
		}
		return out
	}
	ids := func(evs []*Event) string {
		var s []string
		for _, e := range evs {
			s = append(s, e.ID)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		batch  string
		failed []int
		want   string
	}{
		{"a:1 b:2 a:3 c:4 a:5", []int{0}, "1 3 5"},
		{"a:1 b:2 a:3 c:4 a:5", []int{2}, "3 5"},
		{"a:1 b:2 a:3 c:4 b:5", []int{1, 3}, "2 4 5"},
		{"a:1 b:2", []int{0, 1}, "1 2"},
		{":1 :2 :3", []int{0}, "1"}, // keyless events carry no order
	} {
		if got := ids(withKeySuccessors(mk(tc.batch), tc.failed)); got != tc.want {
			t.Errorf("withKeySuccessors(%q, %v) = %q, want %q", tc.batch, tc.failed, got, tc.want)
		}
	}
}
