// Package decode turns an event's raw payload into its body.
package decode

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// Config is the `decode` transform's YAML.
type Config struct {
	// Format of the payload: json, or avro (Confluent schema-registry
	// framing with schemas fetched by ID, or bare binary of a local .avsc).
	Format string `yaml:"format" required:"true" enum:"json,avro"`
	// Avro configures format: avro.
	Avro avro.Config `yaml:"avro"`
	// ID, if set, is the path of the event's stable id in the body; an
	// event without it keeps the id its source gave it.
	ID string `yaml:"id"`
	// Time, if set, is the path of the event time in the body: an RFC 3339
	// string, or a number of Unix seconds (milliseconds when above 1e12).
	Time string `yaml:"time"`
	// RequireTime fails events whose time field is missing or unreadable
	// (default: they keep the time their source gave them).
	RequireTime bool `yaml:"require_time"`
	// MaxDepth bounds how deeply a JSON payload may nest objects and
	// arrays (the body object itself is level 1); a deeper one fails
	// permanently. 0 means DefaultMaxDepth (512).
	MaxDepth int `yaml:"max_depth"`
}

// Validate checks the format.
func (c *Config) Validate() error {
	switch c.Format {
	case "json":
	case "avro":
		if c.Avro.SchemaFile == "" && c.Avro.Registry.URL == "" {
			return pipeline.FieldErrorf("avro", "format: avro needs avro.registry.url or avro.schema_file")
		}
		// The schema file is read when the step is built, relative to the
		// working directory, so `sluice validate` works from anywhere.
	default:
		return pipeline.FieldErrorf("format", "must be json or avro; got %q", c.Format)
	}
	if c.MaxDepth < 0 || c.MaxDepth > 1<<20 {
		return pipeline.FieldErrorf("max_depth", "must be between 1 and 1048576 (0 = %d); got %d", DefaultMaxDepth, c.MaxDepth)
	}
	if c.RequireTime && c.Time == "" {
		return pipeline.FieldErrorf("require_time", "needs time: the path of the event time")
	}
	return nil
}

// Register adds the decode transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "decode", "parse payloads (json, avro) into the event body; set id and event time from it", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(bc, *c)
	})
}

// New returns the decoder for c.Format: a *JSON or an *Avro (NewJSON and
// NewAvro build one of them by name). It returns the Transform interface,
// not a concrete type, because the format picks the type.
func New(bc pipeline.BuildContext, c Config) (pipeline.Transform, error) {
	if c.Format == "avro" {
		return NewAvro(bc, c)
	}
	return NewJSON(bc, c)
}

// JSON decodes JSON object payloads.
type JSON struct {
	cfg Config
	// keys are the plain top-level keys among ID and Time, which the
	// validating scan finds on its way; idKey and timeKey index them (-1:
	// a nested path, read with gjson after the scan, or none).
	keys           []string
	idKey, timeKey int
	// memsHint is how many layout members the last batch had: the next
	// batch's array is made that big (Apply runs on several lanes at once).
	memsHint atomic.Int64
	// noLayouts is set (by WriteLayouts, before Apply runs) when no later
	// step reads layouts: the scan then records none.
	noLayouts bool
}

// WriteLayouts implements pipeline.LayoutWriter: layouts are recorded only
// when a later step reads them.
func (d *JSON) WriteLayouts(on bool) { d.noLayouts = !on }

// NewJSON returns a JSON decoder for c.
func NewJSON(_ pipeline.BuildContext, c Config) (*JSON, error) {
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	d := &JSON{cfg: c, idKey: -1, timeKey: -1}
	if pipeline.IsTopLevelKey(c.ID) {
		d.idKey = len(d.keys)
		d.keys = append(d.keys, c.ID)
	}
	if pipeline.IsTopLevelKey(c.Time) {
		if c.Time == c.ID {
			d.timeKey = d.idKey
		} else {
			d.timeKey = len(d.keys)
			d.keys = append(d.keys, c.Time)
		}
	}
	return d, nil
}

// ErrNotObject is the reason for a payload that is valid JSON but not an
// object: the body of an event is always an object.
var ErrNotObject = errors.New("payload is JSON but not an object")

// Apply validates each payload and shares it as the body: decoding copies
// nothing until a transform edits the body. A malformed payload fails its
// event permanently (it goes to the dead letter with the reason).
//
// Each body gets its layout (pipeline.Layout: where its top-level members
// are, found by the same scan), so a map step after this one does not walk
// the body again — unless no later step reads layouts (WriteLayouts). A
// batch's layouts live in arrays made for that batch, never reused: the
// garbage collector frees them with the last event.
func (d *JSON) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	if d.noLayouts {
		return pipeline.EachEvent(in, func(ev *pipeline.Event) error {
			return pipeline.Permanent(d.decode(ev, nil, nil))
		})
	}
	layouts := make([]pipeline.Layout, len(in))
	lay := &layoutOut{mems: make([]pipeline.Member, 0, d.memsHint.Load())}
	i := 0
	out, err := pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		l := &layouts[i]
		i++
		return pipeline.Permanent(d.decode(ev, lay, l))
	})
	d.memsHint.Store(int64(len(lay.mems)))
	return out, err
}

// decode validates the payload, bounds its depth, finds the id and time
// and the layout l of the body in one scan (no recursion, nothing
// allocated for a valid payload whose id its source already set).
func (d *JSON) decode(ev *pipeline.Event, lay *layoutOut, l *pipeline.Layout) error {
	p := ev.Payload
	var spans [2]span
	if lay != nil {
		lay.start()
	}
	if err := scan(p, d.cfg.MaxDepth, d.keys, spans[:len(d.keys)], lay); err != nil {
		if lay != nil {
			lay.mems = lay.mems[:lay.base]
		}
		if errors.Is(err, errTooDeep) {
			return fmt.Errorf("decode json: payload of %d bytes nests objects and arrays deeper than max_depth (%d)", len(p), d.cfg.MaxDepth)
		}
		return fmt.Errorf("decode json: payload of %d bytes is not valid JSON: %v", len(p), err)
	}
	if first := firstNonSpace(p); first != '{' {
		return fmt.Errorf("decode json: payload of %d bytes: %w", len(p), ErrNotObject)
	}
	ev.Body = p
	if lay == nil {
		ev.ClearLayout()
	} else if !lay.over && lay.open >= 0 && lay.close > lay.open {
		l.Open, l.Close = uint32(lay.open), uint32(lay.close)
		l.Members = lay.mems[lay.base:len(lay.mems):len(lay.mems)]
		ev.SetLayout(l)
	} else {
		lay.mems = lay.mems[:lay.base]
		ev.ClearLayout()
	}
	if d.cfg.ID == "" && d.cfg.Time == "" {
		return nil
	}
	// Read without copying; only the id is kept, as its own string.
	body := unsafe.String(unsafe.SliceData(p), len(p))
	return setIDTime(&d.cfg, ev, "json", d.lookup(body, d.cfg.ID, d.idKey, spans[:]), d.lookup(body, d.cfg.Time, d.timeKey, spans[:]))
}

// lookup returns the value at path: from the scan's span for a plain key,
// with gjson for a nested path.
func (d *JSON) lookup(body, path string, key int, spans []span) gjson.Result {
	switch {
	case path == "":
		return gjson.Result{}
	case key < 0:
		return gjson.Get(body, path)
	case spans[key].end == 0:
		return gjson.Result{}
	}
	s := spans[key]
	return gjson.Parse(body[s.start:s.end])
}

// finish sets the event's id and time from its new body.
func finish(c *Config, ev *pipeline.Event, format string) error {
	if c.ID == "" && c.Time == "" {
		return nil
	}
	// Read without copying; only the id is kept, as its own string.
	body := unsafe.String(unsafe.SliceData(ev.Body), len(ev.Body))
	var id, tm gjson.Result
	if c.ID != "" {
		id = gjson.Get(body, c.ID)
	}
	if c.Time != "" {
		tm = gjson.Get(body, c.Time)
	}
	return setIDTime(c, ev, format, id, tm)
}

// setIDTime sets the event's id and time from the values read from its body.
func setIDTime(c *Config, ev *pipeline.Event, format string, id, tm gjson.Result) error {
	if c.ID != "" {
		if v := id; v.Exists() && v.Type != gjson.Null {
			if s := v.String(); s != "" && s != ev.ID {
				ev.ID = strings.Clone(s)
			}
		}
	}
	if c.Time != "" {
		t, err := eventTime(tm)
		switch {
		case err == nil:
			ev.Time = t
		case c.RequireTime, errors.Is(err, eventtime.ErrOutOfRange):
			ev.Body = nil // a failed event is not decoded
			return fmt.Errorf("decode %s: event time at %q: %w", format, c.Time, err)
		}
	}
	return nil
}

func eventTime(v gjson.Result) (time.Time, error) {
	switch v.Type {
	case gjson.String:
		t, err := time.Parse(time.RFC3339Nano, v.Str)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", strings.Clone(v.Str))
		}
		return t, nil
	case gjson.Number:
		// The digits as written, not through float64; a number that is no
		// event time (1e300, negative) is out of range and always fails.
		return eventtime.Number(v.Raw)
	case gjson.Null:
		if !v.Exists() {
			return time.Time{}, errors.New("missing")
		}
	}
	return time.Time{}, fmt.Errorf("%s is not a time", strconv.Quote(v.Raw)) // Quote copies
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// DecodesBody: the steps after this one see a decoded body.
func (c *Config) DecodesBody() bool { return true }
