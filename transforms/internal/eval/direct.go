package eval

import (
	"strings"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/ast"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// Direct evaluates, without the VM, the expressions `map` users write most:
// a field read, a string literal, lower/upper/trim(x), split(x, "sep")[i]
// on such a value, and now(). It gives exactly the VM's result when it
// gives one; when it cannot (a field that is not a string, an index out of
// range) Eval reports false and the caller runs the VM, which produces
// the VM's value or error.
type Direct struct{ root *dnode }

type dop uint8

const (
	opField dop = iota
	opLit
	opLower
	opUpper
	opTrim
	opSplitIndex
	opNow
)

type dnode struct {
	op  dop
	str string // field path, literal, split separator
	idx int    // split index
	arg *dnode
}

// Kind is the type of a direct result.
type Kind uint8

// The kinds of Value.
const (
	KindString Kind = iota + 1
	KindTime
)

// Value is a direct result: a string or a time.
type Value struct {
	Kind Kind
	Str  string
	Time time.Time
}

// Scratch is what direct evaluation reuses: bytes for computed strings,
// and the instant now() stands for. Strings a Value holds may point into
// it or into the event's body: they are valid until the next Reset or
// the next change of the body, whichever comes first.
type Scratch struct {
	buf []byte
	Now time.Time
	// Field, if set, may answer a field read instead of a gjson lookup in
	// the body (a caller that already walked the body); ok false means
	// look it up.
	Field func(path string) (r gjson.Result, ok bool)
}

// Reset forgets the strings of earlier evaluations.
func (s *Scratch) Reset() { s.buf = s.buf[:0] }

// alloc returns n bytes of scratch space. A full chunk is left to the
// strings that point into it, never overwritten before Reset.
func (s *Scratch) alloc(n int) []byte {
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]byte, 0, max(4096, 2*n))
	}
	start := len(s.buf)
	s.buf = s.buf[:start+n]
	return s.buf[start : start+n : start+n]
}

// Direct returns the VM-free form of the program, or nil when the
// expression is not one Direct handles.
func (p *Program) Direct() *Direct {
	if root := directNode(p.prog.Node()); root != nil {
		return &Direct{root: root}
	}
	return nil
}

func directNode(n ast.Node) *dnode {
	switch x := n.(type) {
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == getFn && len(x.Arguments) == 2 {
			if path, ok := x.Arguments[1].(*ast.StringNode); ok {
				return &dnode{op: opField, str: path.Value}
			}
		}
	case *ast.StringNode:
		return &dnode{op: opLit, str: x.Value}
	case *ast.BuiltinNode:
		switch {
		case x.Name == "now" && len(x.Arguments) == 0:
			return &dnode{op: opNow}
		case len(x.Arguments) != 1:
			return nil
		}
		op, ok := map[string]dop{"lower": opLower, "upper": opUpper, "trim": opTrim}[x.Name]
		if arg := directNode(x.Arguments[0]); ok && arg != nil && arg.op != opNow {
			return &dnode{op: op, arg: arg}
		}
	case *ast.MemberNode:
		split, ok := x.Node.(*ast.BuiltinNode)
		idx, isInt := x.Property.(*ast.IntegerNode)
		if !ok || !isInt || x.Optional || x.Method || split.Name != "split" || len(split.Arguments) != 2 || idx.Value < 0 {
			return nil
		}
		sep, ok := split.Arguments[1].(*ast.StringNode)
		if !ok || sep.Value == "" {
			return nil
		}
		if arg := directNode(split.Arguments[0]); arg != nil && arg.op != opNow {
			return &dnode{op: opSplitIndex, str: sep.Value, idx: idx.Value, arg: arg}
		}
	}
	return nil
}

// Eval evaluates d on ev. ok false means: run the VM instead.
func (d *Direct) Eval(ev *pipeline.Event, s *Scratch) (v Value, ok bool) {
	return d.root.eval(ev, s)
}

func (n *dnode) eval(ev *pipeline.Event, s *Scratch) (Value, bool) {
	switch n.op {
	case opLit:
		return Value{Kind: KindString, Str: n.str}, true
	case opNow:
		return Value{Kind: KindTime, Time: s.Now}, true
	case opField:
		if ev.Body == nil {
			return Value{}, false
		}
		r, ok := gjson.Result{}, false
		if s.Field != nil {
			r, ok = s.Field(n.str)
		}
		if !ok {
			r = gjson.Get(unsafe.String(unsafe.SliceData(ev.Body), len(ev.Body)), n.str)
		}
		if r.Type != gjson.String {
			return Value{}, false
		}
		return Value{Kind: KindString, Str: r.Str}, true
	}
	a, ok := n.arg.eval(ev, s)
	if !ok || a.Kind != KindString {
		return Value{}, false
	}
	switch n.op {
	case opLower:
		return Value{Kind: KindString, Str: s.lower(a.Str)}, true
	case opUpper:
		return Value{Kind: KindString, Str: strings.ToUpper(a.Str)}, true
	case opTrim:
		return Value{Kind: KindString, Str: strings.TrimSpace(a.Str)}, true
	case opSplitIndex:
		part, ok := splitIndex(a.Str, n.str, n.idx)
		return Value{Kind: KindString, Str: part}, ok
	}
	return Value{}, false
}

// lower is strings.ToLower, writing ASCII results into scratch space.
func (s *Scratch) lower(x string) string {
	hasUpper := false
	for i := 0; i < len(x); i++ {
		c := x[i]
		if c >= 0x80 {
			return strings.ToLower(x)
		}
		hasUpper = hasUpper || 'A' <= c && c <= 'Z'
	}
	if !hasUpper {
		return x
	}
	b := s.alloc(len(x))
	for i := 0; i < len(x); i++ {
		c := x[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// splitIndex is strings.Split(s, sep)[i] without the slice; false when
// there is no part i.
func splitIndex(s, sep string, i int) (string, bool) {
	for ; i > 0; i-- {
		j := strings.Index(s, sep)
		if j < 0 {
			return "", false
		}
		s = s[j+len(sep):]
	}
	if j := strings.Index(s, sep); j >= 0 {
		s = s[:j]
	}
	return s, true
}
