// Package mapping reshapes event bodies: it sets fields to the results of
// expressions, renames fields and deletes them. It is registered as "map".
package mapping

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transforms/internal/eval"
	"github.com/tidwall/gjson"
)

// Config is the `map` transform's YAML. Set runs first, then Rename, then
// Delete. Every Set expression reads the body as it was before the step
// (later keys do not see earlier ones; docs/transforms.md says why), and
// now() is read once per batch.
type Config struct {
	// Set maps a field path to an expr-lang expression whose result is
	// stored there: {full_name: 'data.first + " " + data.last'}.
	Set map[string]string `yaml:"set"`
	// Rename moves a field from one path to another: {data.Email: email}.
	Rename map[string]string `yaml:"rename"`
	// Delete removes fields.
	Delete []string `yaml:"delete"`

	sets []setter
}

// NeedsDecodedBody: this step reads the decoded event, so `sluice validate`
// wants a decode step before it.
func (c *Config) NeedsDecodedBody() bool { return true }

type setter struct {
	path   string
	prog   *eval.Program
	direct *eval.Direct // nil: the expression runs on the VM
}

// Validate compiles every expression, reporting each mistake at its key.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Set) == 0 && len(c.Rename) == 0 && len(c.Delete) == 0 {
		errs = append(errs, pipeline.FieldErrorf("set", "map needs at least one of set, rename or delete"))
	}
	paths := make([]string, 0, len(c.Set))
	for p := range c.Set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	c.sets = c.sets[:0]
	for _, p := range paths {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, pipeline.FieldErrorf("set", "empty field path"))
			continue
		}
		prog, err := eval.Compile(c.Set[p], false)
		if err != nil {
			errs = append(errs, pipeline.FieldErrorf("set."+p, "%v", err))
			continue
		}
		c.sets = append(c.sets, setter{path: p, prog: prog})
	}
	for from, to := range c.Rename {
		if strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			errs = append(errs, pipeline.FieldErrorf("rename."+from, "needs a field path on both sides"))
		}
	}
	for i, d := range c.Delete {
		if strings.TrimSpace(d) == "" {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("delete[%d]", i), "empty field path"))
		}
	}
	return errors.Join(errs...)
}

// Register adds the map transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "map", "set fields from expressions, rename and delete fields", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(bc, *c)
	})
}

// Map is the transform.
type Map struct {
	sets    []setter
	renames [][2]string
	deletes []string
	// onePass is set when every path of the step is a plain top-level
	// key: slots are those keys (and the plain top-level fields the
	// direct expressions read), ops the step's edits in order.
	onePass  bool
	slots    []string
	reads    int // slots[:reads] are edited; the rest are only read
	ops      []op
	keyBytes int // room the slots' keys take when appended
	pool     sync.Pool
}

// ReadsLayouts implements pipeline.LayoutReader: a step whose paths are all
// plain top-level keys edits the body from the layout an earlier decode
// recorded, when there is one.
func (m *Map) ReadsLayouts() bool { return m.onePass }

// arenaChunk is the size of the chunks new bodies are written into.
const arenaChunk = 256 << 10

// work is what one Apply call reuses from event to event.
type work struct {
	scratch  eval.Scratch
	vals     []byte // the event's new values, as JSON
	setVals  []ref  // where each set's value is in vals
	state    []slotState
	appended []int
	mems     []member
	nowJSON  []byte // now(), formatted once per batch
	arena    []byte // the batch's new bodies, in chunks of arenaChunk
	// walked is set while members found every slot's value in body, so
	// field reads come from there instead of a gjson lookup.
	walked bool
	body   []byte
	slots  []string
}

// field answers a direct expression's read of a plain top-level field
// from the walk of the body.
func (w *work) field(path string) (gjson.Result, bool) {
	if !w.walked {
		return gjson.Result{}, false
	}
	for i, s := range w.slots {
		if s != path {
			continue
		}
		st := &w.state[i]
		if !st.found {
			return gjson.Result{}, true
		}
		raw := w.body[st.val.start:st.val.end]
		return gjson.Parse(unsafe.String(unsafe.SliceData(raw), len(raw))), true
	}
	return gjson.Result{}, false
}

// New builds a map step for c, compiling it if Validate did not run.
func New(_ pipeline.BuildContext, c Config) (*Map, error) {
	if len(c.sets) != len(c.Set) {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	m := &Map{sets: c.sets, deletes: c.Delete}
	for i := range m.sets {
		m.sets[i].direct = m.sets[i].prog.Direct()
	}
	for from, to := range c.Rename {
		m.renames = append(m.renames, [2]string{from, to})
	}
	sort.Slice(m.renames, func(i, j int) bool { return m.renames[i][0] < m.renames[j][0] })
	m.planOnePass()
	m.pool.New = func() any {
		w := &work{setVals: make([]ref, len(m.sets)), state: make([]slotState, len(m.slots)), slots: m.slots}
		w.scratch.Field = w.field
		return w
	}
	return m, nil
}

// planOnePass lists the step's edits as ops on slots when all its paths
// are plain top-level keys.
func (m *Map) planOnePass() {
	index := map[string]int{}
	slot := func(k string) int {
		if !plainKey(k) {
			return -1
		}
		if i, ok := index[k]; ok {
			return i
		}
		index[k] = len(m.slots)
		m.slots = append(m.slots, k)
		m.keyBytes += len(k) + 4
		return len(m.slots) - 1
	}
	for i, s := range m.sets {
		sl := slot(s.path)
		if sl < 0 {
			return
		}
		m.ops = append(m.ops, op{kind: opSet, slot: sl, setIndex: i})
	}
	for _, r := range m.renames {
		from, to := slot(r[0]), slot(r[1])
		if from < 0 || to < 0 {
			return
		}
		m.ops = append(m.ops, op{kind: opRename, slot: from, to: to})
	}
	for _, d := range m.deletes {
		sl := slot(d)
		if sl < 0 {
			return
		}
		m.ops = append(m.ops, op{kind: opDelete, slot: sl})
	}
	m.reads = len(m.slots)
	for _, s := range m.sets {
		if s.direct == nil {
			continue
		}
		for _, p := range s.prog.Paths {
			if plainKey(p) {
				slot(p)
			}
		}
	}
	m.onePass = true
}

// Apply reshapes each event. An expression that fails on an event, or a
// body that cannot take a field, fails that event permanently. now() is
// read once per call: every event of a batch gets the same instant.
func (m *Map) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	w := m.pool.Get().(*work)
	w.scratch.Now = time.Now()
	w.nowJSON = w.nowJSON[:0]
	w.arena = nil
	out, err := pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		return pipeline.Permanent(m.apply(ev, w))
	})
	w.arena = nil // the bodies belong to their events now
	m.pool.Put(w)
	return out, err
}

func (m *Map) apply(ev *pipeline.Event, w *work) error {
	if ev.Body == nil {
		return fmt.Errorf("map: event %s has no decoded body (add a decode step first)", ev.ID)
	}
	walked, objStart, objEnd := m.walk(ev, w)
	w.walked, w.body = walked, ev.Body
	err := m.eval(ev, w)
	w.walked, w.body = false, nil
	if err != nil {
		return err
	}
	if walked {
		m.applyOnePass(ev, w, objStart, objEnd)
		return nil
	}
	return m.applyEach(ev, w)
}

// walk finds, in one pass over the body, the keys the step edits and the
// fields its expressions read; false (a nested path, a repeated key, not
// an object) means the general path runs.
func (m *Map) walk(ev *pipeline.Event, w *work) (ok bool, objStart, objEnd int) {
	if !m.onePass {
		return false, 0, 0
	}
	for i := range w.state {
		w.state[i] = slotState{appended: -1}
	}
	w.appended = w.appended[:0]
	if l := ev.Layout(); l != nil {
		// The decode step found the members already.
		if err := w.fromLayout(ev.Body, l, m.slots); err == nil {
			return true, int(l.Open), int(l.Close)
		}
		for i := range w.state {
			w.state[i] = slotState{appended: -1}
		}
	}
	objStart, objEnd, err := w.members(ev.Body, m.slots)
	return err == nil, objStart, objEnd
}

// eval computes every set's value, as JSON, from the body as it was
// before the step: directly when the expression allows, else with the VM.
func (m *Map) eval(ev *pipeline.Event, w *work) error {
	w.vals = w.vals[:0]
	w.scratch.Reset()
	for i, s := range m.sets {
		start := len(w.vals)
		if v, ok := s.evalDirect(ev, &w.scratch); ok {
			if v.Kind == eval.KindTime {
				w.vals = append(w.vals, w.now()...)
			} else {
				w.vals = appendString(w.vals, v.Str)
			}
			w.setVals[i] = ref{start: start, end: len(w.vals)}
			continue
		}
		v, err := s.prog.Run(ev)
		if err != nil {
			return fmt.Errorf("map: set %s = %q: %v", s.path, s.prog, err)
		}
		if w.vals, err = appendValue(w.vals, v); err != nil {
			return fmt.Errorf("map: set %q on event %s: %w", s.path, ev.ID, err)
		}
		w.setVals[i] = ref{start: start, end: len(w.vals)}
	}
	return nil
}

func (s *setter) evalDirect(ev *pipeline.Event, sc *eval.Scratch) (eval.Value, bool) {
	if s.direct == nil {
		return eval.Value{}, false
	}
	return s.direct.Eval(ev, sc)
}

// now is the batch's now() as JSON.
func (w *work) now() []byte {
	if len(w.nowJSON) == 0 {
		w.nowJSON, _ = appendTime(w.nowJSON, w.scratch.Now) // a clock reading is within year 9999
	}
	return w.nowJSON
}

// applyOnePass writes the new body once into the batch's arena, after
// members walked it.
func (m *Map) applyOnePass(ev *pipeline.Event, w *work, objStart, objEnd int) {
	w.simulate(m.ops)
	need := len(ev.Body) + len(w.vals) + m.keyBytes + 2
	if cap(w.arena)-len(w.arena) < need {
		// One chunk size, so the heap reuses freed chunks rather than
		// fragmenting (it showed as RSS at large batch sizes).
		w.arena = make([]byte, 0, max(need, arenaChunk))
	}
	start := len(w.arena)
	w.arena = w.write(w.arena, ev.Body, m.slots, objStart, objEnd)
	ev.Body = w.arena[start:len(w.arena):len(w.arena)]
}

// applyEach applies the edits one by one with sjson: the general path,
// for nested paths and bodies the one-pass editor does not take.
func (m *Map) applyEach(ev *pipeline.Event, w *work) error {
	for i, s := range m.sets {
		v := w.setVals[i]
		if err := ev.SetRaw(s.path, w.vals[v.start:v.end]); err != nil {
			return fmt.Errorf("map: %w", err)
		}
	}
	for _, r := range m.renames {
		v := ev.Get(r[0])
		if !v.Exists() {
			continue
		}
		raw := []byte(v.Raw)
		if err := ev.Delete(r[0]); err != nil {
			return fmt.Errorf("map: rename: %w", err)
		}
		if err := ev.SetRaw(r[1], raw); err != nil {
			return fmt.Errorf("map: rename: %w", err)
		}
	}
	for _, d := range m.deletes {
		if err := ev.Delete(d); err != nil {
			return fmt.Errorf("map: %w", err)
		}
	}
	return nil
}
