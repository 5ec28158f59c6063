package pipeline

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigError is one mistake in a pipeline file, placed at its line and
// named by its key path: "crm.yaml:12: sinks[0].mongodb.colection: unknown
// field (did you mean collection?)".
type ConfigError struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// ConfigErrors is every mistake found in one file, in line order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// FieldError lets a config's Validate method point at the offending key,
// relative to the component's own config ("batch.max_events").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrorf builds a FieldError.
func FieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validator is implemented by config structs that check themselves after
// decoding. Return FieldErrors (joined with errors.Join) to name keys.
type Validator interface {
	Validate() error
}

// Warner is implemented by config structs whose settings can be valid yet
// weaken a guarantee (an explicit opt-out of a check): each warning is a
// FieldError, placed at its key's line like Validate's errors, and listed
// in Config.Warnings for `sluice validate` and `sluice run` to print. A
// warning does not fail the load.
type Warner interface {
	Warnings() []error
}

// Defaulter is implemented by config structs that fill their defaults
// before the user's values are decoded over them.
type Defaulter interface {
	SetDefaults()
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	specType        = reflect.TypeFor[componentSpec]()
)

// decoder walks a YAML tree and a Go value together, collecting every
// mistake instead of stopping at the first, which is what `sluice validate`
// promises.
type decoder struct {
	file     string
	registry *Registry
	errs     ConfigErrors
	warns    ConfigErrors
	lines    map[string]int // key path -> line, to place Validate's errors
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &ConfigError{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if v.CanAddr() && v.Addr().Type().Implements(specType) {
		d.decodeSpec(n, v.Addr().Interface().(componentSpec), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if isNull(n) {
			return
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			d.fail(n, path, "internal: map keys must be strings")
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, joinPath(path, k.Value))
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", kindName(v.Type()), describe(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.fail(n, path, "expected %s, got %s", kindName(v.Type()), describe(n))
	}
}

type fieldInfo struct {
	name     string
	index    []int
	required bool
}

func structFields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range structFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, fieldInfo{name: name, index: []int{i}, required: f.Tag.Get("required") == "true"})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields := structFields(v.Type())
	seen := map[string]bool{}
	if !isNull(n) {
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping of keys, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := joinPath(path, k.Value)
			if seen[k.Value] {
				d.fail(k, kp, "duplicate key")
				continue
			}
			seen[k.Value] = true
			f, ok := findField(fields, k.Value)
			if !ok {
				names := make([]string, len(fields))
				for j, f := range fields {
					names[j] = f.name
				}
				d.fail(k, kp, "unknown field%s", suggest(k.Value, names))
				continue
			}
			if f.required && isNull(val) {
				continue // reported below as missing
			}
			d.decode(val, v.FieldByIndex(f.index), kp)
		}
	}
	for _, f := range fields {
		if f.required && !seen[f.name] || f.required && seen[f.name] && v.FieldByIndex(f.index).IsZero() {
			d.fail(n, joinPath(path, f.name), "required field is missing")
		}
	}
	if v.CanAddr() {
		if val, ok := v.Addr().Interface().(Validator); ok {
			d.validate(n, val, path)
		}
		if w, ok := v.Addr().Interface().(Warner); ok {
			d.warn(n, w, path)
		}
	}
}

// validate runs a config's own checks, placing each FieldError at the line
// of the key it names.
func (d *decoder) validate(n *yaml.Node, val Validator, path string) {
	err := val.Validate()
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			p := joinPath(path, fe.Field)
			if d.failedAt(p) {
				continue // already reported as undecodable
			}
			line, ok := d.lines[p]
			if !ok {
				line = n.Line
			}
			d.errs = append(d.errs, &ConfigError{File: d.file, Line: line, Path: p, Msg: fe.Msg})
			continue
		}
		d.fail(n, path, "%v", e)
	}
}

// warn records a config's warnings, each at the line of the key it names.
func (d *decoder) warn(n *yaml.Node, w Warner, path string) {
	for _, e := range w.Warnings() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			d.warns = append(d.warns, &ConfigError{File: d.file, Line: n.Line, Path: path, Msg: e.Error()})
			continue
		}
		p := joinPath(path, fe.Field)
		line, ok := d.lines[p]
		if !ok {
			line = n.Line
		}
		d.warns = append(d.warns, &ConfigError{File: d.file, Line: line, Path: p, Msg: fe.Msg})
	}
}

// failedAt reports whether an error was already recorded at path or below
// or above it, so Validate does not repeat a decoding error in other words.
func (d *decoder) failedAt(path string) bool {
	for _, e := range d.errs {
		if e.Path == path || strings.HasPrefix(e.Path, path+".") || strings.HasPrefix(path, e.Path+".") {
			return true
		}
	}
	return false
}

func findField(fields []fieldInfo, name string) (fieldInfo, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return fieldInfo{}, false
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!null":
			return "nothing"
		}
		return strings.TrimPrefix(n.Tag, "!!") + " " + n.Value
	}
	return "an unexpected node"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// suggest returns " (did you mean X?)" for the closest candidate within a
// small edit distance, or "" with the valid names listed when none is close.
func suggest(got string, candidates []string) string {
	best, bestDist := "", 1<<30
	for _, c := range candidates {
		if dist := editDistance(got, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best != "" && bestDist <= max(2, len(got)/3) {
		return " (did you mean " + best + "?)"
	}
	if len(candidates) == 0 {
		return ""
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	return " (known: " + strings.Join(sorted, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
