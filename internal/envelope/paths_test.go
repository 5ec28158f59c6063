package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// testTree reads "a", "a.b", "a.b.c", "d.0", "d.x", "e" into slots 0–5.
func testTree() *PathNode {
	root := &PathNode{}
	for slot, p := range []string{"a", "a.b", "a.b.c", "d.0", "d.x", "e"} {
		if err := root.Add(p, slot); err != nil {
			panic(err)
		}
	}
	return root
}

// checkReadPaths holds ReadPaths to ReadChecked followed by WalkPaths
// over data: the same error or none, the same envelope fields, and, when
// the scan walked data, the same slots (type, raw text, string, number).
// It returns whether the scan walked data.
func checkReadPaths(t *testing.T, body string, limit int) bool {
	t.Helper()
	tree := testTree()
	picked := 0
	pick := func(source, typ string) *PathNode {
		picked++
		if source == "skip" {
			return nil
		}
		return tree
	}
	var got, want Fields
	out := make([]gjson.Result, 6)
	walked, err := ReadPaths(body, &got, limit, pick, out)
	werr := ReadChecked(body, &want, limit)
	if werr != nil {
		var g, w *pipeline.JSONDepthError
		if !errors.As(err, &g) || !errors.As(werr, &w) || *g != *w || walked {
			t.Fatalf("%.80q: error %v walked %v, ReadChecked says %v", body, err, walked, werr)
		}
		return false
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%.80q: error %v, fields\n got %#v\nwant %#v", body, err, got.r, want.r)
	}
	if !walked {
		for s, v := range out {
			if v.Exists() {
				t.Fatalf("%.80q: not walked, yet slot %d = %q", body, s, v.Raw)
			}
		}
		return false
	}
	if picked != 1 {
		t.Fatalf("%.80q: walked with pick called %d times", body, picked)
	}
	wout := make([]gjson.Result, 6)
	WalkPaths(tree, want.Data(), wout)
	for s := range wout {
		g, w := out[s], wout[s]
		if g.Type != w.Type || g.Raw != w.Raw || g.Str != w.Str || g.Num != w.Num {
			t.Fatalf("%.80q: slot %d = %#v, WalkPaths %#v", body, s, g, w)
		}
	}
	return true
}

func TestReadPaths(t *testing.T) {
	head := `{"id":"e1","source":"s","type":"t","account_id":"a1","occurred_at":"o","key":"k1","data":`
	for _, tt := range []struct {
		body   string
		walked bool
	}{
		{head + `{"a":{"b":{"c":1,"x":[1]}},"d":["d0",2],"e":"\u00e9"}}`, true},
		{head + `{"a":{"b":{"x":1}},"a":{"b":{"c":"second"}},"e":null}}`, true}, // top: the first "a" counts
		{head + `{"a":{"b":{"x":1},"b":{"c":"next"}}}}`, true},                  // below the top: looked for under the next "b"
		{head + `{"a":1,"d":{"0":"zero","x":{"y":1}},"e":[{}]}}`, true},
		{head + `{"a":{"b":{"c":1}},"d":"scalar","e":true,"e":false}}`, true},
		{head + `{"z":[[[[]]]],"a":{"q":{"b":2},"b":{"c":{"deep":[1]}}}}}`, true},
		{`{"source":"s","type":"t","data":{"a":{"b":{"c":2}}},"data":{"e":1}}`, true},            // the first data
		{`{"source":"skip","type":"t","data":{"a":1}}`, false},                                   // pick gives no paths
		{`{"source":"s","data":{"a":1},"type":"t"}`, false},                                      // type after data
		{`{"type":"t","data":{"a":1},"source":"s"}`, false},                                      // source after data
		{`{"source":"s","type":"t","data":[{"a":1}]}`, false},                                    // not an object
		{`{"source":"s","type":"t","data":{"a":(1)}}`, false},                                    // the slow readers
		{`{"source":"s","type":"t","data":{"\u0061":1}}`, false},                                 // an escaped key
		{`{"source":"s","type":"t","data":{"a":{"b":` + strings.Repeat("[", 600) + `}}}`, false}, // too deep
		{head + `{"a":1}} [[`, true},                                                             // every field found: depth-checked after
		{`{"source":"s","type":"t","data":{"a":1}} [[`, false},                                   // Read looks past the brace
	} {
		if walked := checkReadPaths(t, tt.body, pipeline.DefaultMaxJSONDepth); walked != tt.walked {
			t.Errorf("%.80q: walked %v, want %v", tt.body, walked, tt.walked)
		}
	}
}

// FuzzReadPaths: on any valid JSON, ReadPaths is ReadChecked and
// WalkPaths; on any input, the same error or none and the same fields.
func FuzzReadPaths(f *testing.F) {
	for _, s := range []string{
		`{"source":"s","type":"t","data":{"a":{"b":{"c":1,"x":[1]}},"d":["d0",2],"e":"\u00e9"}}`,
		`{"source":"s","type":"t","data":{"a":{"b":{"x":1}},"a":{"b":{"c":"second"}},"d":{"0":1,"0":2}}}`,
		`{"source":"s","type":"t","data":{"a":{"q":1,"b":{"c":{}}},"a":{"b":{"c":2}},"e":-1.5e3}}`,
		`{"source":"skip","type":"t","data":{"a":1}}`,
		`{"source":"s","type":"t","data":{"a":{"b":{"x":1},"b":{"c":"next"}}}}`,
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, body string, limit uint8) {
		l := int(limit)
		if l == 0 {
			l = pipeline.DefaultMaxJSONDepth
		}
		if !json.Valid([]byte(body)) {
			// WalkPaths (gjson) and the scan may read a malformed data
			// alike or not; the envelope and the error still agree.
			var got, want Fields
			_, err := ReadPaths(body, &got, l, func(string, string) *PathNode { return testTree() }, make([]gjson.Result, 6))
			werr := ReadChecked(body, &want, l)
			if (err == nil) != (werr == nil) || (err == nil && !reflect.DeepEqual(got, want)) {
				t.Fatalf("%.80q: error %v fields %#v, ReadChecked %v %#v", body, err, got.r, werr, want.r)
			}
			return
		}
		checkReadPaths(t, body, l)
	})
}

// TestPathNodeAddRefusesA65thKey: the walk keeps a node's keys seen in
// one uint64, so Add refuses the 65th key under one node and takes 64.
func TestPathNodeAddRefusesA65thKey(t *testing.T) {
	for _, tc := range []struct {
		keys    int
		wantErr bool
	}{{64, false}, {65, true}} {
		root := &PathNode{}
		var err error
		for i := range tc.keys {
			if err = root.Add(fmt.Sprintf("o.k%d", i), i); err != nil {
				break
			}
		}
		if (err != nil) != tc.wantErr {
			t.Errorf("%d keys under o: err %v, want error %v", tc.keys, err, tc.wantErr)
		}
	}
}
