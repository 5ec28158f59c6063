package decode

import (
	"context"
	"errors"
	"fmt"

	"github.com/linkedin/goavro/v2"
	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/pipeline"
)

// Avro decodes Avro records into JSON bodies: Confluent-framed payloads
// (magic byte 0, 4-byte schema ID) with the schema fetched from the
// registry by ID and cached, or bare binary of a local .avsc file.
type Avro struct {
	cfg      Config
	local    *goavro.Codec
	localDec *avro.JSONDecoder // nil: the schema is left to goavro
	registry *avro.Registry
}

// NewAvro returns an Avro decoder for c.
func NewAvro(_ pipeline.BuildContext, c Config) (*Avro, error) {
	d := &Avro{cfg: c}
	if c.Avro.SchemaFile != "" {
		codec, schema, err := avro.LoadFile(c.Avro.SchemaFile)
		if err != nil {
			return nil, err
		}
		d.local = codec
		// goavro has accepted the schema; the JSON decoder is the fast
		// path, goavro the fallback for what the decoder leaves out.
		d.localDec, _ = avro.NewJSONDecoder(schema)
	}
	if c.Avro.Registry.URL != "" {
		r, err := avro.NewRegistry(c.Avro.Registry)
		if err != nil {
			return nil, err
		}
		d.registry = r
	}
	if d.local == nil && d.registry == nil {
		return nil, errors.New("decode avro: needs avro.registry.url or avro.schema_file")
	}
	return d, nil
}

// Apply decodes each payload. A malformed record, an unknown schema ID or
// a schema that does not compile fails its event permanently; a registry
// that cannot be reached fails it retryably.
func (d *Avro) Apply(ctx context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	return pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		err := d.decode(ctx, ev)
		if err != nil && (errors.Is(err, avro.ErrPermanent) || !errors.Is(err, errRetry)) {
			return pipeline.Permanent(err)
		}
		return err
	})
}

// errRetry marks registry failures worth retrying.
var errRetry = errors.New("retryable")

func (d *Avro) decode(ctx context.Context, ev *pipeline.Event) error {
	codec, dec, data := d.local, d.localDec, ev.Payload
	if d.registry != nil {
		id, rest, err := avro.SplitFrame(ev.Payload)
		switch {
		case err == nil:
			c, jd, err := d.registry.Decoder(ctx, id)
			if err != nil {
				if errors.Is(err, avro.ErrPermanent) {
					return fmt.Errorf("decode avro: %w", err)
				}
				return fmt.Errorf("decode avro: %w (%w)", err, errRetry)
			}
			codec, dec, data = c, jd, rest
		case d.local == nil:
			return fmt.Errorf("decode avro: payload of %d bytes: %w", len(ev.Payload), err)
		}
	}
	if dec != nil {
		return d.decodeFast(ev, dec, data)
	}
	native, rest, err := codec.NativeFromBinary(data)
	if err != nil {
		return fmt.Errorf("decode avro: %v", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("decode avro: %d bytes left after the record", len(rest))
	}
	if _, ok := native.(map[string]any); !ok {
		return errors.New("decode avro: the record is not an object")
	}
	body, err := codec.TextualFromNative(make([]byte, 0, len(data)*2), native)
	if err != nil {
		return fmt.Errorf("decode avro: to JSON: %v", err)
	}
	ev.Body = body
	return finish(&d.cfg, ev, "avro")
}

// decodeFast decodes with the schema-compiled JSON decoder: the same body
// as goavro's NativeFromBinary + TextualFromNative (FuzzJSONDecoder in
// transforms/avro holds them together), without the map tree.
func (d *Avro) decodeFast(ev *pipeline.Event, dec *avro.JSONDecoder, data []byte) error {
	if !dec.IsRecord() {
		return errors.New("decode avro: the record is not an object")
	}
	body, rest, err := dec.Append(make([]byte, 0, len(data)*2), data)
	if err != nil {
		return fmt.Errorf("decode avro: %v", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("decode avro: %d bytes left after the record", len(rest))
	}
	ev.Body = body
	return finish(&d.cfg, ev, "avro")
}
