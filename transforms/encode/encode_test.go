package encode

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/internal/avro/avrotest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/transforms/decode"
)

const schemaFile = "testdata/contact.avsc"

var bodies = []string{
	`{"id":"e1","source":"hubspot","type":"contact.created","entity":{"kind":"contact","id":"42"},"account_id":"acct_1","score":7,"tags":["a","b"]}`,
	`{"id":"e2","source":"salesforce","type":"contact.updated","entity":{"kind":"contact","id":"003x"},"account_id":null,"score":null,"tags":[]}`,
}

func events(bs ...string) []*pipeline.Event {
	out := make([]*pipeline.Event, len(bs))
	for i, b := range bs {
		out[i] = &pipeline.Event{ID: "src-" + string(rune('a'+i)), Payload: []byte(b), Body: []byte(b)}
	}
	return out
}

func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	json.Unmarshal([]byte(want), &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body %s, want %s", got, want)
	}
}

// TestAvroRoundTripThroughRegistry encodes through a registry that answers
// the Confluent REST API, then decodes the framed records by schema ID.
func TestAvroRoundTripThroughRegistry(t *testing.T) {
	reg := avrotest.New(t)
	enc, err := New(pipelinetest.BuildContext(), Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile, Subject: "crm-value", Registry: avro.RegistryConfig{URL: reg.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := reg.Subject("crm-value")
	if len(ids) != 1 {
		t.Fatalf("subject has %v, want one registered schema", ids)
	}
	evs := events(bodies...)
	out, err := enc.Apply(context.Background(), evs)
	if err != nil || len(out) != 2 {
		t.Fatalf("encode: %v", err)
	}
	for _, ev := range out {
		id, _, err := avro.SplitFrame(ev.Body)
		if err != nil || id != ids[0] {
			t.Fatalf("frame: id %d, %v; want id %d", id, err, ids[0])
		}
	}

	dec, err := decode.NewAvro(pipelinetest.BuildContext(), decode.Config{Format: "avro", ID: "id", Avro: avro.Config{Registry: avro.RegistryConfig{URL: reg.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	// The Kafka sink writes Body; a consumer receives it as the payload.
	for round := 0; round < 3; round++ {
		in := make([]*pipeline.Event, len(out))
		for i, ev := range out {
			in[i] = &pipeline.Event{ID: "kafka-offset", Payload: ev.Body}
		}
		got, err := dec.Apply(context.Background(), in)
		if err != nil || len(got) != 2 {
			t.Fatalf("decode: %v", err)
		}
		for i, ev := range got {
			sameJSON(t, ev.Body, bodies[i])
			if want := []string{"e1", "e2"}[i]; ev.ID != want {
				t.Errorf("id = %q, want %q from the body", ev.ID, want)
			}
		}
	}
	if n := reg.Fetches.Load(); n != 1 {
		t.Errorf("schema fetched %d times, want once (cached)", n)
	}
	// Registering again finds the same ID.
	enc2, _ := New(pipelinetest.BuildContext(), Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile, Subject: "crm-value", Registry: avro.RegistryConfig{URL: reg.URL}}})
	if err := enc2.Start(context.Background()); err != nil || enc2.id != ids[0] {
		t.Fatalf("second registration: id %d, %v", enc2.id, err)
	}
}

func TestAvroDecodeFailures(t *testing.T) {
	reg := avrotest.New(t)
	id := reg.Add("crm-value", mustRead(t, schemaFile))
	reg.Add("other", `"string"`) // id 2: not a record
	dec, err := decode.NewAvro(pipelinetest.BuildContext(), decode.Config{Format: "avro", Avro: avro.Config{Registry: avro.RegistryConfig{URL: reg.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := New(pipelinetest.BuildContext(), Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile, Subject: "crm-value", Registry: avro.RegistryConfig{URL: reg.URL}}})
	good := events(bodies[0])
	if _, err := enc.Apply(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	framed := good[0].Body
	tests := []struct {
		name      string
		payload   []byte
		permanent bool
		reason    string
	}{
		{"not framed", []byte(`{"json":true}`), true, "wire format"},
		{"unknown schema id", avro.AppendFrame(nil, 99), true, "not in the registry"},
		{"schema not a record", append(avro.AppendFrame(nil, 2), 2, 'x'), true, "must be a record"},
		{"truncated record", framed[:len(framed)-3], true, "decode avro"},
		{"trailing bytes", append(append([]byte(nil), framed...), 0, 0), true, "left after the record"},
	}
	_ = id
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []*pipeline.Event{{ID: "ok", Payload: framed}, {ID: "bad", Payload: tt.payload}}
			out, err := dec.Apply(context.Background(), in)
			var be *pipeline.BatchError
			if !errors.As(err, &be) || be.Len() != 1 || be.Failures[0].Index != 1 {
				t.Fatalf("want event 1 failed, got %v", err)
			}
			f := be.Failures[0].Err
			if pipeline.IsPermanent(f) != tt.permanent || !strings.Contains(f.Error(), tt.reason) {
				t.Fatalf("failure %q (permanent %v), want %q permanent %v", f, pipeline.IsPermanent(f), tt.reason, tt.permanent)
			}
			if len(out) != 1 || out[0].ID != "ok" {
				t.Fatalf("survivors: %v", out)
			}
		})
	}
	t.Run("registry down is retryable", func(t *testing.T) {
		reg2 := avrotest.New(t)
		reg2.Fail.Store(true)
		d2, _ := decode.NewAvro(pipelinetest.BuildContext(), decode.Config{Format: "avro", Avro: avro.Config{Registry: avro.RegistryConfig{URL: reg2.URL}}})
		_, err := d2.Apply(context.Background(), []*pipeline.Event{{ID: "x", Payload: framed}})
		var be *pipeline.BatchError
		if !errors.As(err, &be) || pipeline.IsPermanent(be.Failures[0].Err) {
			t.Fatalf("want a retryable failure, got %v", err)
		}
		reg2.Fail.Store(false)
		reg2.Add("crm-value", mustRead(t, schemaFile))
		out, err := d2.Apply(context.Background(), []*pipeline.Event{{ID: "x", Payload: framed}})
		if err != nil || len(out) != 1 {
			t.Fatalf("after the registry recovered: %v", err)
		}
	})
}

func TestAvroLocalSchemaFile(t *testing.T) {
	enc, err := New(pipelinetest.BuildContext(), Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile}})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(bodies[0], `{"id":"x","source":"s"}`, bodies[1])
	out, err := enc.Apply(context.Background(), evs)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 1 || be.Failures[0].Index != 1 || !pipeline.IsPermanent(be.Failures[0].Err) || !strings.Contains(be.Failures[0].Err.Error(), "does not fit the schema") {
		t.Fatalf("want the body missing fields failed permanently, got %v", err)
	}
	// Bare binary: the record starts with the id string's zigzag length
	// (2 -> 4), not with the registry frame's magic byte 0.
	if len(out) != 2 || out[0].Body[0] != 4 {
		t.Fatalf("local schema records must be bare binary, got % x", out[0].Body[:min(8, len(out[0].Body))])
	}
	dec, err := decode.NewAvro(pipelinetest.BuildContext(), decode.Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile}})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range out {
		got, err := dec.Apply(context.Background(), []*pipeline.Event{{ID: "k", Payload: ev.Body}})
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, got[0].Body, []string{bodies[0], bodies[1]}[i])
	}
}

func TestJSONPassesBodies(t *testing.T) {
	enc, err := New(pipelinetest.BuildContext(), Config{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	in := events(bodies[0])
	in = append(in, &pipeline.Event{ID: "nobody"})
	out, err := enc.Apply(context.Background(), in)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 1 || be.Failures[0].Index != 1 {
		t.Fatalf("want the event without a body failed, got %v", err)
	}
	if len(out) != 1 || string(out[0].Body) != bodies[0] {
		t.Fatalf("json encode changed the body: %s", out[0].Body)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{Format: "json"}, ""},
		{Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile}}, ""},
		{Config{Format: "xml"}, "format"},
		{Config{Format: "avro"}, "avro.schema_file"},
		{Config{Format: "avro", Avro: avro.Config{SchemaFile: schemaFile, Registry: avro.RegistryConfig{URL: "http://x"}}}, "avro.subject"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		var fe *pipeline.FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%+v: Validate = %v, want error on %s", tt.cfg, err, tt.field)
		}
	}
}

func TestBuildFailsOnBadSchemaFile(t *testing.T) {
	for _, path := range []string{"testdata/missing.avsc", "encode_test.go"} {
		if _, err := New(pipelinetest.BuildContext(), Config{Format: "avro", Avro: avro.Config{SchemaFile: path}}); err == nil {
			t.Errorf("New with schema_file %s succeeded", path)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	_, s, err := avro.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
