package envelope

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// PathNode is one key of a set of paths into data, as a tree of keys: the
// slots whose path ends at it, the keys below it (Kids maps a key to its
// index in Nodes; at most 64 keys under one key), and Below, every path
// under it relative to it, for when its value is not an object. A reader
// of data (transforms/enrich's mappings) builds one per set of paths.
type PathNode struct {
	Slots []int
	Kids  map[string]int
	Nodes []*PathNode
	Below []PathRef
}

// PathRef is one path below a node: the slot it fills and the rest of the
// path, as gjson reads it.
type PathRef struct {
	Slot int
	Rest string
}

// Add adds path (gjson's dotted form, e.g. "a.b.0") below n as the path
// that fills slot. A node takes at most 64 keys (the walk keeps which it
// has seen in one uint64): Add fails past that.
func (n *PathNode) Add(path string, slot int) error {
	for {
		key, rest, more := strings.Cut(path, ".")
		i, ok := n.Kids[key]
		if !ok {
			if len(n.Nodes) == 64 {
				return fmt.Errorf("path %q: more than 64 keys under one key", path)
			}
			if n.Kids == nil {
				n.Kids = map[string]int{}
			}
			i = len(n.Nodes)
			n.Kids[key] = i
			n.Nodes = append(n.Nodes, &PathNode{})
		}
		n = n.Nodes[i]
		if !more {
			n.Slots = append(n.Slots, slot)
			return nil
		}
		n.Below = append(n.Below, PathRef{Slot: slot, Rest: rest})
		path = rest
	}
}

// Resolved reports whether every slot of n and below it is filled.
func (n *PathNode) Resolved(out []gjson.Result) bool {
	for _, s := range n.Slots {
		if !out[s].Exists() {
			return false
		}
	}
	for _, r := range n.Below {
		if !out[r.Slot].Exists() {
			return false
		}
	}
	return true
}

// ReadPaths is ReadChecked that also reads paths of data in the same scan.
// When the scan reaches data and source and type came before it, pick is
// given their string values (gjson's Str: "" for a value that is not a
// string) and returns the tree of paths to read, or nil; the slots of out
// are then filled as WalkPaths fills them from data, and walked is true.
// walked is false (out untouched) when pick was not called or returned
// nil, when data is not an object, and for every body ReadChecked hands
// to the slow readers: the caller then reads data itself.
func ReadPaths(body string, f *Fields, limit int, pick func(source, typ string) *PathNode, out []gjson.Result) (walked bool, err error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	c := checked{b: body, limit: limit, pick: pick}
	if ok, err := c.read(f, out); ok {
		return c.walked && err == nil, err
	}
	for i := range out {
		out[i] = gjson.Result{}
	}
	return false, readSlow(body, f, limit)
}

// WalkPaths fills the slots of the nodes below n from obj, an object, as
// one pass over its keys: of a top-level key given twice the first counts;
// below the top, as gjson.Get does, a path not found under the first of
// two equal keys is looked for under the next. A slot already filled is
// kept. It is what ReadPaths does in its scan, for data the scan did not
// walk.
func WalkPaths(n *PathNode, obj gjson.Result, out []gjson.Result) {
	walkPaths(n, obj, out, true)
}

func walkPaths(n *PathNode, obj gjson.Result, out []gjson.Result, top bool) {
	left := len(n.Nodes)
	var seen, done uint64
	obj.ForEach(func(k, v gjson.Result) bool {
		i, found := n.Kids[k.Str]
		bit := uint64(1) << i
		if !found || done&bit != 0 || (top && seen&bit != 0) {
			return true
		}
		seen |= bit
		kid := n.Nodes[i]
		fillSlots(kid, v, out)
		switch {
		case len(kid.Nodes) == 0:
		case v.IsObject():
			walkPaths(kid, v, out, false)
		default:
			fillBelow(kid, v, out)
		}
		if top || kid.Resolved(out) {
			done |= bit
			left--
		}
		return left > 0
	})
}

func fillSlots(n *PathNode, v gjson.Result, out []gjson.Result) {
	for _, s := range n.Slots {
		if !out[s].Exists() {
			out[s] = v
		}
	}
}

// fillBelow: n's value is an array ("0" of "emails.0") or a scalar: the
// paths below it as gjson.Get reads them.
func fillBelow(n *PathNode, v gjson.Result, out []gjson.Result) {
	for _, r := range n.Below {
		if !out[r.Slot].Exists() {
			out[r.Slot] = v.Get(r.Rest)
		}
	}
}

// walk is walkPaths in the scan: the object at c.i, depth counted as
// skip counts it. ok is false for anything the scan does not vouch for.
func (c *checked) walk(n *PathNode, top bool, out []gjson.Result) (ok bool, err error) {
	if c.depth++; c.depth > c.limit {
		return true, c.deep()
	}
	c.i++
	var seen, done uint64
	if c.ws(); c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		c.depth--
		return true, nil
	}
	for {
		key, ok := c.key()
		if !ok {
			return false, nil
		}
		i, found := n.Kids[key]
		bit := uint64(1) << i
		if !found || done&bit != 0 || (top && seen&bit != 0) {
			if _, ok, err := c.value(); !ok || err != nil {
				return ok, err
			}
		} else {
			seen |= bit
			kid := n.Nodes[i]
			if ok, err := c.walkValue(kid, out); !ok || err != nil {
				return ok, err
			}
			if top || kid.Resolved(out) {
				done |= bit
			}
		}
		more, ok := c.next()
		if !ok {
			return false, nil
		}
		if !more {
			c.depth--
			return true, nil
		}
	}
}

// walkValue reads kid's value at c.i: its slots, and the paths below it.
func (c *checked) walkValue(kid *PathNode, out []gjson.Result) (ok bool, err error) {
	vs := c.i
	if len(kid.Nodes) > 0 && c.i < len(c.b) && c.b[c.i] == '{' {
		// The slots of kid are filled before those below it in
		// walkPaths; they are distinct slots, so after is the same.
		if ok, err := c.walk(kid, false, out); !ok || err != nil {
			return ok, err
		}
		fillSlots(kid, gjson.Result{Type: gjson.JSON, Raw: c.b[vs:c.i], Index: vs}, out)
		return true, nil
	}
	v, ok, err := c.value()
	if !ok || err != nil {
		return ok, err
	}
	v.Index = vs
	fillSlots(kid, v, out)
	if len(kid.Nodes) > 0 {
		fillBelow(kid, v, out)
	}
	return true, nil
}

// walkable: ReadPaths asked for data's paths, data's value at c.i is an
// object, and source and type came before it (pick needs both).
func (c *checked) walkable(f *Fields) bool {
	return c.pick != nil && c.i < len(c.b) && c.b[c.i] == '{' &&
		f.r[iSource].Exists() && f.r[iType].Exists()
}

// walkData moves past data's object at c.i, reading the paths pick gives
// for the envelope's source and type, or skipping it when it gives none.
func (c *checked) walkData(f *Fields, out []gjson.Result) (ok bool, err error) {
	n := c.pick(f.r[iSource].Str, f.r[iType].Str)
	if n == nil {
		return c.skip()
	}
	if ok, err = c.walk(n, true, out); ok && err == nil {
		c.walked = true
	}
	return ok, err
}
