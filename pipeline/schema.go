package pipeline

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// SchemaID is the $id of the pipeline file's JSON Schema.
const SchemaID = "https://sluicehq.github.io/sluice/pipeline.schema.json"

// Describer returns the documentation of a field (field != "") or of a type
// (field == ""), "" when there is none. The CLI's describer reads the doc
// comments of the config structs, collected at `go generate` time.
type Describer func(t reflect.Type, field string) string

// JSONSchema is a JSON Schema (draft 2020-12) of a pipeline file as r
// decodes it: the same config structs, required keys (`required:"true"`),
// allowed values (`enum:"a,b"`) and the defaults SetDefaults fills. describe
// may be nil.
//
// The schema is for editors: what it accepts is a superset of what
// `sluice validate` accepts (cross-field rules, expressions and ${VAR}
// references are checked by validate only; a field that is not a string
// accepts a ${VAR} string too, since interpolation types it afterwards).
func (r *Registry) JSONSchema(describe Describer) ([]byte, error) {
	if describe == nil {
		describe = func(reflect.Type, string) string { return "" }
	}
	g := &schemaGen{reg: r, describe: describe}
	root := g.structSchema(reflect.TypeFor[Config](), reflect.ValueOf(defaultConfig()))
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "sluice pipeline"
	return json.MarshalIndent(root, "", "  ")
}

func defaultConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

type schemaGen struct {
	reg      *Registry
	describe Describer
}

type object = map[string]any

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	rateType     = reflect.TypeFor[Rate]()
	templateType = reflect.TypeFor[Template]()
	sourceSpec   = reflect.TypeFor[SourceSpec]()
	transSpec    = reflect.TypeFor[TransformSpec]()
	sinkSpec     = reflect.TypeFor[SinkSpec]()
)

// envRefPattern matches a value that is or holds a ${VAR} reference.
const envRefPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

func envString() object { return object{"type": "string", "pattern": envRefPattern} }

// schemaFor is the schema of a value of type t; def is its default value
// (invalid when unknown).
func (g *schemaGen) schemaFor(t reflect.Type, def reflect.Value) object {
	switch t {
	case durationType:
		return object{"anyOf": []any{
			object{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`},
			object{"const": 0}, envString(),
		}, "description": "a duration: 100ms, 30s, 10m, 1h30m"}
	case byteSizeType:
		return object{"anyOf": []any{
			object{"type": "integer", "minimum": 0},
			object{"type": "string", "pattern": `^\s*[0-9.]+\s*([kKmMgGtTpPeE]i?[bB]?|[bB])?\s*$`},
			envString(),
		}, "description": "a size: 512KiB, 4MiB, 1GB or a number of bytes"}
	case rateType:
		return object{"type": "string", "pattern": `^\s*[0-9.eE+]+\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$|` + envRefPattern,
			"description": "a rate: 3333/s, 200000/min, 1000/h"}
	case templateType:
		return object{"type": "string", "description": "a name template: body fields in {{…}}, event time in {2006.01.02}"}
	case sourceSpec:
		return g.specSchema(KindSource)
	case transSpec:
		return g.specSchema(KindTransform)
	case sinkSpec:
		return g.specSchema(KindSink)
	}
	switch t.Kind() {
	case reflect.Pointer:
		var d reflect.Value
		if def.IsValid() && !def.IsNil() {
			d = def.Elem()
		}
		return g.schemaFor(t.Elem(), d)
	case reflect.Struct:
		return g.structSchema(t, def)
	case reflect.Slice:
		return object{"type": "array", "items": g.schemaFor(t.Elem(), reflect.Value{})}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": g.schemaFor(t.Elem(), reflect.Value{})}
	case reflect.Interface:
		return object{}
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"anyOf": []any{object{"type": "boolean"}, envString()}}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return object{"anyOf": []any{object{"type": "integer"}, envString()}}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"anyOf": []any{object{"type": "integer", "minimum": 0}, envString()}}
	case reflect.Float32, reflect.Float64:
		return object{"anyOf": []any{object{"type": "number"}, envString()}}
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return object{} // a custom scalar the schema cannot describe
	}
	return object{}
}

// structSchema describes a struct: its keys, the required ones, and no
// others (decoding is strict).
func (g *schemaGen) structSchema(t reflect.Type, def reflect.Value) object {
	if !def.IsValid() {
		def = reflect.New(t)
		if d, ok := def.Interface().(Defaulter); ok {
			d.SetDefaults()
		}
		def = def.Elem()
	}
	props := object{}
	var required []string
	for _, f := range structFields(t) {
		sf := t.FieldByIndex(f.index)
		fv := def.FieldByIndex(f.index)
		s := g.schemaFor(sf.Type, fv)
		if e := sf.Tag.Get("enum"); e != "" {
			s = object{"anyOf": []any{object{"enum": strings.Split(e, ",")}, envString()}}
		}
		if d := g.fieldDoc(t, f.index); d != "" {
			if hint, ok := s["description"].(string); ok && hint != "" {
				d += " (" + hint + ")"
			}
			s["description"] = d
		}
		if v, ok := defaultValue(fv); ok && sf.Tag.Get("default") != "-" {
			s["default"] = v
		}
		props[f.name] = s
		if f.required {
			required = append(required, f.name)
		}
	}
	o := object{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	if d := g.describe(t, ""); d != "" {
		o["description"] = d
	}
	return o
}

// fieldDoc is the doc of the field at index, found in the struct that
// declares it (an inlined struct documents its own fields).
func (g *schemaGen) fieldDoc(t reflect.Type, index []int) string {
	for len(index) > 1 {
		ft := t.Field(index[0]).Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		t, index = ft, index[1:]
	}
	return g.describe(t, t.Field(index[0]).Name)
}

// specSchema is `{name: {config}}` with exactly one registered name.
func (g *schemaGen) specSchema(kind Kind) object {
	props := object{}
	for _, name := range g.reg.Names(kind) {
		reg, _ := g.reg.lookup(kind, name)
		cfg := reflect.ValueOf(reg.newConfig()) // *C with its defaults
		s := g.schemaFor(cfg.Type().Elem(), cfg.Elem())
		desc := reg.summary
		if d, ok := s["description"].(string); ok && d != "" {
			desc += "\n\n" + d
		}
		s["description"] = desc
		// `- stdout:` with nothing after it keeps the defaults.
		props[name] = object{"anyOf": []any{s, object{"type": "null"}}, "description": desc}
	}
	return object{
		"type": "object", "properties": props, "additionalProperties": false,
		"minProperties": 1, "maxProperties": 1,
		"description": "exactly one " + string(kind) + " as `name: {config}`",
	}
}

// defaultValue is v as it would be written in a pipeline file, when it is
// not the zero value.
func defaultValue(v reflect.Value) (any, bool) {
	if !v.IsValid() || v.IsZero() {
		return nil, false
	}
	switch v.Type() {
	case durationType:
		return v.Interface().(Duration).String(), true
	case byteSizeType:
		return formatSize(int64(v.Interface().(ByteSize))), true
	case rateType, templateType:
		return nil, false
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint(), true
	case reflect.Float32, reflect.Float64:
		return v.Float(), true
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			out := make([]string, v.Len())
			for i := range out {
				out[i] = v.Index(i).String()
			}
			return out, true
		}
	case reflect.Map:
		if v.Type().Key().Kind() == reflect.String {
			out := map[string]any{}
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				if d, ok := defaultValue(v.MapIndex(k)); ok {
					out[k.String()] = d
				}
			}
			if len(out) > 0 {
				return out, true
			}
		}
	}
	return nil, false
}

func formatSize(n int64) any {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return n
}
