package decode

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/internal/avro/avrotest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/transforms/encode"
	"github.com/sluicehq/sluice/transforms/enrich"
)

const canonicalSchema = "../../docs/canonical-event.avsc"

// canonicalRecords returns Avro binary of the canonical schema: generated
// CRM/ATS/email events through enrich and encode, as the bench pipeline
// produces them.
func canonicalRecords(tb testing.TB, n int) [][]byte {
	enr, err := enrich.New(pipeline.NewBuildContext("bench", "test", nil, nil), enrich.Config{StripTags: true, Unknown: "fail"})
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := encode.New(pipelinetest.BuildContext(), encode.Config{Format: "avro", Avro: avro.Config{SchemaFile: canonicalSchema}})
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	g := generate.NewGenerator(generate.Workload{Seed: 1}, func() time.Time { return now })
	var out [][]byte
	for len(out) < n {
		ev := &pipeline.Event{}
		g.Next(ev, nil)
		ev.Body = ev.Payload
		evs, err := enr.Apply(context.Background(), []*pipeline.Event{ev})
		if err != nil || len(evs) == 0 {
			continue // the generator's malformed events
		}
		if _, err := enc.Apply(context.Background(), evs); err != nil {
			tb.Fatal(err)
		}
		out = append(out, evs[0].Body)
	}
	return out
}

// BenchmarkDecodeAvro decodes canonical-event records (bare binary, local
// schema) to JSON bodies: goavro's NativeFromBinary + TextualFromNative
// against the schema-compiled JSONDecoder. One op is one event.
func BenchmarkDecodeAvro(b *testing.B) {
	recs := canonicalRecords(b, 512)
	var size int
	for _, r := range recs {
		size += len(r)
	}
	for _, path := range []string{"goavro", "jsondecoder"} {
		b.Run(path, func(b *testing.B) {
			d, err := NewAvro(pipelinetest.BuildContext(), Config{Format: "avro", ID: "id", Time: "occurred_at", Avro: avro.Config{SchemaFile: canonicalSchema}})
			if err != nil {
				b.Fatal(err)
			}
			if path == "goavro" {
				d.localDec = nil
			} else if d.localDec == nil {
				b.Fatal("no JSON decoder for the canonical schema")
			}
			ctx := context.Background()
			ev := &pipeline.Event{}
			b.SetBytes(int64(size / len(recs)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				*ev = pipeline.Event{ID: "x", Payload: recs[i%len(recs)]}
				if err := d.decode(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFastPathMatchesGoavro decodes the canonical records both ways
// through the transform: the same bodies (as JSON values), ids and times.
func TestFastPathMatchesGoavro(t *testing.T) {
	fast, err := NewAvro(pipelinetest.BuildContext(), Config{Format: "avro", ID: "id", Time: "occurred_at", Avro: avro.Config{SchemaFile: canonicalSchema}})
	if err != nil {
		t.Fatal(err)
	}
	if fast.localDec == nil {
		t.Fatal("no JSON decoder for the canonical schema")
	}
	slow, _ := NewAvro(pipelinetest.BuildContext(), Config{Format: "avro", ID: "id", Time: "occurred_at", Avro: avro.Config{SchemaFile: canonicalSchema}})
	slow.localDec = nil
	for _, rec := range canonicalRecords(t, 300) {
		a := &pipeline.Event{ID: "x", Payload: rec}
		b := &pipeline.Event{ID: "x", Payload: rec}
		if err := fast.decode(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if err := slow.decode(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if !sameJSONValue(t, a.Body, b.Body) || a.ID != b.ID || !a.Time.Equal(b.Time) {
			t.Fatalf("fast %s %v %s\nslow %s %v %s", a.ID, a.Time, a.Body, b.ID, b.Time, b.Body)
		}
		// Trailing bytes and truncation fail both ways.
		for _, bad := range [][]byte{append(rec[:len(rec):len(rec)], 0), rec[:len(rec)-1]} {
			ea := fast.decode(context.Background(), &pipeline.Event{Payload: bad})
			eb := slow.decode(context.Background(), &pipeline.Event{Payload: bad})
			if ea == nil || eb == nil {
				t.Fatalf("fast %v, slow %v", ea, eb)
			}
		}
	}
}

func sameJSONValue(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

// TestRegistryDecoders: a registry schema gets a JSON decoder cached with
// its codec; one the decoder leaves to goavro (decimal) still decodes.
func TestRegistryDecoders(t *testing.T) {
	reg := avrotest.New(t)
	canonical, err := os.ReadFile(canonicalSchema)
	if err != nil {
		t.Fatal(err)
	}
	idFast := reg.Add("fast-value", string(canonical))
	const decimalSchema = `{"type":"record","name":"D","fields":[{"name":"id","type":"string"},{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}}]}`
	idSlow := reg.Add("slow-value", decimalSchema)
	d, err := NewAvro(pipelinetest.BuildContext(), Config{Format: "avro", ID: "id", Avro: avro.Config{Registry: avro.RegistryConfig{URL: reg.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, dec, err := d.registry.Decoder(ctx, idFast); err != nil || dec == nil {
		t.Fatalf("canonical schema: decoder %v, %v", dec, err)
	}
	if c, dec, err := d.registry.Decoder(ctx, idSlow); err != nil || c == nil || dec != nil {
		t.Fatalf("decimal schema: codec %v, decoder %v, %v", c, dec, err)
	}
	for _, rec := range canonicalRecords(t, 20) {
		ev := &pipeline.Event{ID: "x", Payload: append(avro.AppendFrame(nil, idFast), rec...)}
		out, err := d.Apply(ctx, []*pipeline.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out[0].Body, &m); err != nil || out[0].ID != m["id"] {
			t.Fatalf("%v: %s (id %s)", err, out[0].Body, out[0].ID)
		}
	}
	codec, err := avro.NewCodec(decimalSchema)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := codec.BinaryFromNative(nil, map[string]any{"id": "d1", "amount": big.NewRat(1234, 100)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.Apply(ctx, []*pipeline.Event{{ID: "x", Payload: append(avro.AppendFrame(nil, idSlow), bin...)}})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].ID != "d1" || !json.Valid(out[0].Body) {
		t.Fatalf("decimal record: %s", out[0].Body)
	}
}
