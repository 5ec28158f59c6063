package decode

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/internal/avro/avrotest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

const fuzzSchema = `{"type":"record","name":"R","fields":[
 {"name":"id","type":"string"},
 {"name":"n","type":["null","long","double"],"default":null},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":["null","string","boolean"]}},
 {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}},
 {"name":"raw","type":"bytes"},
 {"name":"child","type":["null",{"type":"record","name":"C","fields":[{"name":"x","type":"int"}]}],"default":null}
]}`

// checkOutcome asserts the decode contract for any input: no panic, each
// event either passes with a JSON object body or fails permanently.
func checkOutcome(t *testing.T, out []*pipeline.Event, err error) {
	t.Helper()
	var be *pipeline.BatchError
	switch {
	case err == nil:
		if len(out) != 1 {
			t.Fatalf("no error but %d events out", len(out))
		}
		var m map[string]any
		if jerr := json.Unmarshal(out[0].Body, &m); jerr != nil {
			t.Fatalf("decoded body is not a JSON object: %v: %q", jerr, out[0].Body)
		}
	case errors.As(err, &be):
		if len(out) != 0 || be.Len() != 1 || !pipeline.IsPermanent(be.Failures[0].Err) {
			t.Fatalf("want one permanent failure, got %v (%d out)", err, len(out))
		}
	default:
		t.Fatalf("whole-batch error: %v", err)
	}
}

func FuzzAvroDecode(f *testing.F) {
	dir := f.TempDir()
	path := dir + "/r.avsc"
	if err := writeFile(path, fuzzSchema); err != nil {
		f.Fatal(err)
	}
	reg := avrotest.New(f)
	id := reg.Add("fuzz-value", fuzzSchema)
	local, err := NewAvro(pipelinetest.BuildContext(), Config{Format: "avro", ID: "id", Avro: avro.Config{SchemaFile: path}})
	if err != nil {
		f.Fatal(err)
	}
	framed, err := NewAvro(pipelinetest.BuildContext(), Config{Format: "avro", ID: "id", Avro: avro.Config{Registry: avro.RegistryConfig{URL: reg.URL}}})
	if err != nil {
		f.Fatal(err)
	}
	codec, err := avro.NewCodec(fuzzSchema)
	if err != nil {
		f.Fatal(err)
	}
	seed, err := codec.BinaryFromNative(nil, map[string]any{
		"id": "e1", "n": map[string]any{"long": int64(5)}, "tags": []any{"a"},
		"attrs": map[string]any{"k": map[string]any{"string": "v"}}, "kind": "B", "raw": []byte{0, 1, '"'},
		"child": map[string]any{"sluice.C": map[string]any{"x": int32(3)}},
	})
	if err != nil {
		// goavro names the union branch by the record's full name.
		seed, err = codec.BinaryFromNative(nil, map[string]any{"id": "e1", "n": nil, "tags": []any{}, "attrs": map[string]any{}, "kind": "A", "raw": []byte{}, "child": nil})
		if err != nil {
			f.Fatal(err)
		}
	}
	f.Add(seed)
	f.Add(avro.AppendFrame(nil, id))
	f.Add(append(avro.AppendFrame(nil, id), seed...))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range []*Avro{local, framed} {
			out, err := d.Apply(context.Background(), []*pipeline.Event{{ID: "f", Payload: b}})
			checkOutcome(t, out, err)
			if err == nil && string(out[0].Payload) != string(b) {
				t.Fatal("payload changed")
			}
		}
		// The framed decoder sees the record behind a valid header too.
		out, err := framed.Apply(context.Background(), []*pipeline.Event{{ID: "f", Payload: append(avro.AppendFrame(nil, id), b...)}})
		checkOutcome(t, out, err)
	})
}

func FuzzJSONDecode(f *testing.F) {
	d := newJSON(f, Config{Format: "json", ID: "id", Time: "occurred_at"})
	for _, s := range []string{`{"id":"a","occurred_at":"2026-01-02T03:04:05Z"}`, `{"occurred_at":1700000000123}`, `[]`, `{"a":`, `"x"`, "\xff{}", `{"id":{"x":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := d.Apply(context.Background(), []*pipeline.Event{{ID: "f", Payload: b}})
		checkOutcome(t, out, err)
	})
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
