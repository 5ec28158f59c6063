// Package eval compiles expr-lang expressions that read an event's body.
//
// Names in an expression are body fields: `type`, `data.email`,
// `data["x-y"]`, `tags[0]`. Rather than decode the whole body into a map per
// event, compilation rewrites every such name or constant member chain into
// one call that fetches just that path with gjson, so an event costs only
// the fields the expression reads.
package eval

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// env is what a program runs against: the event being evaluated. The
// fetch function is a field of a type expr calls without reflection or an
// argument slice (func(any, any) any), handed the env itself: compiled
// calls read __body($env, "path").
type env struct {
	Body   func(any, any) any `expr:"__body"`
	ev     *pipeline.Event
	nocopy bool
}

// state is what one evaluation reuses: a VM and the env, pooled.
type state struct {
	vm  vm.VM
	env env
}

func fetch(e, path any) any {
	en := e.(*env)
	body := en.ev.Body
	if body == nil {
		return nil
	}
	if en.nocopy {
		// Results point into the body: only for callers that keep no
		// string of the result beyond Run (filter's boolean).
		return value(gjson.Get(unsafe.String(unsafe.SliceData(body), len(body)), path.(string)))
	}
	return value(gjson.GetBytes(body, path.(string)))
}

const getFn = "__body"

// Program is a compiled expression, safe for concurrent use.
type Program struct {
	src  string
	prog *vm.Program
	pool *sync.Pool
	// Paths are the body paths the expression reads.
	Paths []string
}

// Compile compiles src; wantBool requires a boolean result.
func Compile(src string, wantBool bool) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	c := &collector{callees: map[*ast.IdentifierNode]bool{}, vars: map[string]bool{}}
	r := &rewriter{c: c, paths: map[ast.Node]string{}, extended: map[string]bool{}}
	opts := []expr.Option{
		expr.Env(&env{}),
		expr.Patch(c),
		expr.Patch(r),
	}
	if wantBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, err
	}
	p := &Program{src: src, prog: prog, pool: &sync.Pool{New: func() any { return &state{env: env{Body: fetch}} }}}
	seen := map[string]bool{}
	for _, path := range r.order {
		if !seen[path] && !r.extended[path] {
			seen[path] = true
			p.Paths = append(p.Paths, path)
		}
	}
	return p, nil
}

// String returns the source.
func (p *Program) String() string { return p.src }

// Run evaluates the program on ev. Strings in the result are copies.
func (p *Program) Run(ev *pipeline.Event) (any, error) { return p.run(ev, false) }

// RunBool evaluates a program compiled with wantBool. Fields are read
// without copies, which is safe because no string outlives the call.
func (p *Program) RunBool(ev *pipeline.Event) (bool, error) {
	v, err := p.run(ev, true)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("result %v (%T) is not a boolean", v, v)
	}
	return b, nil
}

func (p *Program) run(ev *pipeline.Event, nocopy bool) (any, error) {
	st := p.pool.Get().(*state)
	st.env.ev, st.env.nocopy = ev, nocopy
	out, err := st.vm.Run(p.prog, &st.env)
	st.env.ev = nil
	p.pool.Put(st)
	return out, err
}

// value converts a gjson result to what expressions compare: strings,
// ints for integral numbers, float64 otherwise, bools, nil for null or
// missing, maps and slices for objects and arrays.
func value(r gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		if f := r.Num; f == float64(int64(f)) && f < 1<<53 && f > -(1<<53) {
			return int(f)
		}
		return r.Num
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		return r.Value()
	}
	return nil
}

// collector finds the identifiers that are not body fields: called
// functions and let variables.
type collector struct {
	callees map[*ast.IdentifierNode]bool
	vars    map[string]bool
}

func (c *collector) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			c.callees[id] = true
		}
	case *ast.VariableDeclaratorNode:
		c.vars[x.Name] = true
	}
}

// rewriter turns body names and constant member chains into __body calls.
// The walk is post-order, so `a.b.c` becomes __body("a"), then
// __body("a.b"), then __body("a.b.c").
type rewriter struct {
	c        *collector
	paths    map[ast.Node]string // rewritten nodes -> their path
	order    []string
	extended map[string]bool // paths that became the base of a longer one
}

func (r *rewriter) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if x.Value == "$env" || r.c.callees[x] || r.c.vars[x.Value] {
			return
		}
		r.replace(n, escape(x.Value))
	case *ast.MemberNode:
		base, ok := r.paths[x.Node]
		if !ok || x.Method {
			return
		}
		var seg string
		switch p := x.Property.(type) {
		case *ast.StringNode:
			seg = escape(p.Value)
		case *ast.IntegerNode:
			if p.Value < 0 {
				return
			}
			seg = strconv.Itoa(p.Value)
		default:
			return
		}
		r.extended[base] = true
		r.replace(n, base+"."+seg)
	}
}

func (r *rewriter) replace(n *ast.Node, path string) {
	call := &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: getFn},
		Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}, &ast.StringNode{Value: path}},
	}
	ast.Patch(n, call)
	r.paths[*n] = path
	r.order = append(r.order, path)
}

// escape makes a field name one gjson path segment.
func escape(s string) string {
	if !strings.ContainsAny(s, `.*?|#@\!`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', '*', '?', '|', '#', '@', '\\', '!':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
