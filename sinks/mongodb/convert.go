package mongodb

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sluicehq/sluice/pipeline"
)

// Expressions that name event facts rather than body fields.
const (
	exprID   = "$id"
	exprKey  = "$key"
	exprTime = "$time"
	exprBody = "$body"
)

var errNoBody = errors.New("no decoded body: add a decode step before the mongodb sink")

// bodyDoc converts the event's JSON body to BSON, once per event. Relaxed
// Extended JSON is accepted, so {"$date": ...} in a body becomes a date.
func bodyDoc(ev *pipeline.Event) (bson.D, error) {
	if len(ev.Body) == 0 {
		return nil, errNoBody
	}
	// Plain JSON (no "$" keys, so no Extended JSON wrappers) takes a fast
	// path: the driver's Extended JSON reader is most of the client's CPU.
	if r, ok := plainObject(ev.Body); ok {
		return jsonDoc(r), nil
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON(ev.Body, false, &d); err != nil {
		return nil, fmt.Errorf("body of event %s is not a BSON-compatible JSON object: %w", ev.ID, err)
	}
	return d, nil
}

// jsonDoc converts a valid JSON object without Extended JSON keys.
func jsonDoc(r gjson.Result) bson.D {
	d := make(bson.D, 0, 8)
	r.ForEach(func(k, v gjson.Result) bool {
		d = append(d, bson.E{Key: k.Str, Value: plainValue(v)})
		return true
	})
	return d
}

func plainValue(v gjson.Result) any {
	switch {
	case v.IsObject():
		return jsonDoc(v)
	case v.IsArray():
		a := bson.A{}
		v.ForEach(func(_, e gjson.Result) bool {
			a = append(a, plainValue(e))
			return true
		})
		return a
	}
	x, _ := jsonValue(v) // scalars cannot fail
	return x
}

// value evaluates an update expression for ev. ok is false when the event
// lacks the field: the target is then left alone.
func value(expr string, ev *pipeline.Event, body bson.D) (v any, ok bool, err error) {
	switch expr {
	case exprID:
		return ev.ID, true, nil
	case exprKey:
		if len(ev.Key) == 0 {
			return nil, false, nil
		}
		return string(ev.Key), true, nil
	case exprTime:
		if ev.Time.IsZero() {
			return nil, false, nil
		}
		return bson.NewDateTimeFromTime(ev.Time), true, nil
	case exprBody:
		return body, true, nil
	}
	r := ev.Get(expr)
	if !r.Exists() {
		return nil, false, nil
	}
	v, err = jsonValue(r)
	return v, err == nil, err
}

// jsonValue converts one gjson value to its BSON counterpart: integers
// stay integers (int32, or int64 when larger), other numbers are doubles.
func jsonValue(r gjson.Result) (any, error) {
	switch r.Type {
	case gjson.Null:
		return nil, nil
	case gjson.False:
		return false, nil
	case gjson.True:
		return true, nil
	case gjson.String:
		return r.Str, nil
	case gjson.Number:
		if !strings.ContainsAny(r.Raw, ".eE") {
			if n, err := strconv.ParseInt(r.Raw, 10, 64); err == nil {
				// As relaxed Extended JSON reads them: int32 when it fits.
				if n == int64(int32(n)) {
					return int32(n), nil
				}
				return n, nil
			}
		}
		return r.Num, nil
	}
	// An object or array: let the Extended JSON reader build it.
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(`{"v":`+r.Raw+`}`), false, &d); err != nil {
		return nil, fmt.Errorf("field value %.40s: %w", r.Raw, err)
	}
	return d[0].Value, nil
}

// fullDoc is the document insert and replace write: _id first, then the
// body's fields (a body _id is replaced by the computed one).
func fullDoc(id string, body bson.D) bson.D {
	d := make(bson.D, 0, len(body)+1)
	d = append(d, bson.E{Key: "_id", Value: id})
	for _, e := range body {
		if e.Key != "_id" {
			d = append(d, e)
		}
	}
	return d
}

// upsertFilter matches the entity's document unless ev was already
// applied to it. A redelivered event then matches nothing, the upsert tries
// to insert a second document with the same _id, and the duplicate-key
// error that follows means "already applied".
func (u *UpdateConfig) upsertFilter(id string, ev *pipeline.Event) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: u.AppliedField, Value: bson.D{{Key: "$ne", Value: ev.ID}}}}
}

// updateDoc builds the update of mode: upsert for ev. Operators and their
// fields come in a fixed order so the same event always yields the same
// bytes.
func (u *UpdateConfig) updateDoc(ev *pipeline.Event, body bson.D) (bson.D, error) {
	var upd bson.D
	var set bson.D
	if u.setBody() {
		targets := u.targets()
	fields:
		for _, e := range body {
			if e.Key == "_id" || overlaps(e.Key, u.AppliedField) {
				continue
			}
			for _, t := range targets {
				if overlaps(e.Key, t[0]) {
					continue fields
				}
			}
			set = append(set, e)
		}
	}
	exprs := func(m map[string]string) (bson.D, error) {
		var d bson.D
		for _, k := range sortedKeys(m) {
			v, ok, err := value(m[k], ev, body)
			if err != nil {
				return nil, err
			}
			if ok {
				d = append(d, bson.E{Key: k, Value: v})
			}
		}
		return d, nil
	}
	more, err := exprs(u.Set)
	if err != nil {
		return nil, err
	}
	set = append(set, more...)
	if len(set) > 0 {
		upd = append(upd, bson.E{Key: "$set", Value: set})
	}
	soi, err := exprs(u.SetOnInsert)
	if err != nil {
		return nil, err
	}
	if len(soi) > 0 {
		upd = append(upd, bson.E{Key: "$setOnInsert", Value: soi})
	}
	if len(u.Inc) > 0 {
		var inc bson.D
		for _, k := range sortedKeys(u.Inc) {
			inc = append(inc, bson.E{Key: k, Value: u.Inc[k]})
		}
		upd = append(upd, bson.E{Key: "$inc", Value: inc})
	}
	mx, err := exprs(u.Max)
	if err != nil {
		return nil, err
	}
	if len(mx) > 0 {
		upd = append(upd, bson.E{Key: "$max", Value: mx})
	}
	push := bson.D{{Key: u.AppliedField, Value: bson.D{
		{Key: "$each", Value: bson.A{ev.ID}},
		{Key: "$slice", Value: -u.AppliedKeep},
	}}}
	for _, k := range sortedKeys(u.Push) {
		p := u.Push[k]
		entry, err := exprs(p.Value)
		if err != nil {
			return nil, err
		}
		push = append(push, bson.E{Key: k, Value: bson.D{
			{Key: "$each", Value: bson.A{entry}},
			{Key: "$slice", Value: -p.Keep},
		}})
	}
	upd = append(upd, bson.E{Key: "$push", Value: push})
	return upd, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
