// Package encode turns event bodies into the bytes a sink writes: JSON as
// is, or Avro records framed for the Kafka sink (Confluent wire format:
// magic byte 0, 4-byte schema ID, Avro binary). Encode is the last
// transform: after format: avro the body is no longer JSON.
package encode

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `encode` transform's YAML.
type Config struct {
	// Format is json (bodies pass as they are) or avro.
	Format string `yaml:"format" required:"true" enum:"json,avro"`
	// Avro configures format: avro: schema_file is the schema records are
	// encoded with; with registry.url the schema is registered (or looked
	// up) under subject and records are framed with its ID, else they are
	// bare Avro binary.
	Avro avro.Config `yaml:"avro"`
}

// NeedsDecodedBody: this step reads the decoded event, so `sluice validate`
// wants a decode step before it.
func (c *Config) NeedsDecodedBody() bool { return true }

// Validate checks the format and the schema.
func (c *Config) Validate() error {
	switch c.Format {
	case "json":
		return nil
	case "avro":
	default:
		return pipeline.FieldErrorf("format", "must be json or avro; got %q", c.Format)
	}
	var errs []error
	// The file is read (and the schema compiled) when the step is built,
	// relative to the working directory: `sluice validate` works anywhere.
	if c.Avro.SchemaFile == "" {
		errs = append(errs, pipeline.FieldErrorf("avro.schema_file", "format: avro needs the schema to encode with"))
	}
	if c.Avro.Registry.URL != "" && c.Avro.Subject == "" {
		errs = append(errs, pipeline.FieldErrorf("avro.subject", "a registry needs the subject to register the schema under"))
	}
	return errors.Join(errs...)
}

// Register adds the encode transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "encode", "encode bodies for the sinks (json, or avro framed with a schema-registry id)", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(bc, *c)
	})
}

// Encode is the transform.
type Encode struct {
	cfg      Config
	codec    *avro.JSONEncoder
	schema   string
	registry *avro.Registry

	mu sync.Mutex
	id int // registered schema ID; 0 until registered
}

// New builds an encoder for c.
func New(_ pipeline.BuildContext, c Config) (*Encode, error) {
	e := &Encode{cfg: c}
	if c.Format != "avro" {
		return e, nil
	}
	_, schema, err := avro.LoadFile(c.Avro.SchemaFile) // goavro checks the schema
	if err != nil {
		return nil, err
	}
	codec, err := avro.NewJSONEncoder(schema)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Avro.SchemaFile, err)
	}
	e.codec, e.schema = codec, schema
	if c.Avro.Registry.URL != "" {
		if e.registry, err = avro.NewRegistry(c.Avro.Registry); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Start registers the schema, so a wrong registry fails the run at once.
func (e *Encode) Start(ctx context.Context) error {
	_, err := e.schemaID(ctx)
	return err
}

func (e *Encode) schemaID(ctx context.Context) (int, error) {
	if e.registry == nil {
		return 0, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id != 0 {
		return e.id, nil
	}
	id, err := e.registry.Register(ctx, e.cfg.Avro.Subject, e.schema)
	if err != nil {
		return 0, fmt.Errorf("encode avro: %w", err)
	}
	e.id = id
	return id, nil
}

// Apply encodes each body. A body that does not fit the schema fails its
// event permanently; a registry that cannot be reached fails the batch
// retryably.
func (e *Encode) Apply(ctx context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	var id int
	if e.codec != nil {
		var err error
		if id, err = e.schemaID(ctx); err != nil {
			return nil, err
		}
	}
	return pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		return pipeline.Permanent(e.encode(ev, id))
	})
}

func (e *Encode) encode(ev *pipeline.Event, id int) error {
	if ev.Body == nil {
		return fmt.Errorf("encode: event %s has no decoded body (add a decode step first)", ev.ID)
	}
	if e.codec == nil {
		return nil // json: the body is the encoding
	}
	buf := make([]byte, 0, len(ev.Body))
	if e.registry != nil {
		buf = avro.AppendFrame(buf, id)
	}
	buf, err := e.codec.Append(buf, ev.Body)
	if err != nil {
		return fmt.Errorf("encode avro: body does not fit the schema: %v", err)
	}
	ev.Body = buf
	return nil
}
