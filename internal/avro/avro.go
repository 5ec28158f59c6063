// Package avro holds what decode and encode share for format: avro: the
// Confluent schema-registry client with a codec cache, local .avsc files,
// and the wire format (magic byte 0, 4-byte big-endian schema ID, Avro
// binary).
package avro

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `avro:` block of decode and encode.
type Config struct {
	// SchemaFile is a local .avsc file. Decode: payloads are bare Avro
	// binary of this schema (no registry framing) unless a registry is also
	// set, in which case framed payloads use the registry. Encode: the
	// schema records are encoded with (and registered under Subject when a
	// registry is set).
	SchemaFile string `yaml:"schema_file"`
	// Registry is a Confluent-compatible schema registry.
	Registry RegistryConfig `yaml:"registry"`
	// Subject is the registry subject encode registers the schema under,
	// e.g. "crm-events-value".
	Subject string `yaml:"subject"`
}

// RegistryConfig locates a schema registry.
type RegistryConfig struct {
	URL      string            `yaml:"url"`
	Username string            `yaml:"username"`
	Password string            `yaml:"password"`
	Timeout  pipeline.Duration `yaml:"timeout"`
}

// Decoding limits. goavro allocates a block's items up front from the
// count the record claims, and its defaults (2^31 items, 2 GiB) let a
// six-byte payload ask for tens of gigabytes: found by FuzzAvroDecode. An
// event is at most a few megabytes, so these bounds cost nothing real.
const (
	maxBlockCount = 1 << 16 // items in one array or map block
	maxBlockSize  = 1 << 24 // bytes in one bytes or string value (16 MiB)
)

func init() {
	// Process-wide settings of goavro; sluice is their only user.
	goavro.MaxBlockCount = maxBlockCount
	goavro.MaxBlockSize = maxBlockSize
}

// NewCodec compiles a schema for records that travel as standard JSON
// bodies: unions are plain values, not {"type": value}.
func NewCodec(schema string) (*goavro.Codec, error) {
	return goavro.NewCodecForStandardJSONFull(schema)
}

// LoadFile reads and compiles a .avsc file; the schema must be a record,
// since an event body is a JSON object.
func LoadFile(path string) (*goavro.Codec, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	c, err := NewCodec(string(raw))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if !IsRecord(string(raw)) {
		return nil, "", fmt.Errorf("%s: the schema must be a record (an event body is an object)", path)
	}
	return c, string(raw), nil
}

// IsRecord reports whether a schema's top-level type is a record.
func IsRecord(schema string) bool {
	return gjson.Get(schema, "type").Str == "record"
}

// Registry fetches schemas by ID and caches their codecs and JSON
// decoders for the life of the process (a schema ID never changes meaning):
// one entry per schema ID the process has seen, like the codecs.
type Registry struct {
	cl      *sr.Client
	timeout time.Duration

	mu       sync.RWMutex
	codecs   map[int]*goavro.Codec
	decoders map[int]*JSONDecoder // nil for schemas left to goavro (ErrUnsupportedSchema)
	bad      map[int]error        // IDs whose schema does not compile: permanent
}

// NewRegistry returns a registry client for c.
func NewRegistry(c RegistryConfig) (*Registry, error) {
	timeout := c.Timeout.D()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	opts := []sr.ClientOpt{sr.URLs(c.URL), sr.HTTPClient(&http.Client{Timeout: timeout})}
	if c.Username != "" {
		opts = append(opts, sr.BasicAuth(c.Username, c.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Registry{cl: cl, timeout: timeout, codecs: map[int]*goavro.Codec{}, decoders: map[int]*JSONDecoder{}, bad: map[int]error{}}, nil
}

// ErrPermanent wraps failures that will not go away by retrying: an
// unknown schema ID, a schema that does not compile.
var ErrPermanent = errors.New("permanent")

// Codec returns the codec of schema id, fetching it once.
func (r *Registry) Codec(ctx context.Context, id int) (*goavro.Codec, error) {
	c, _, err := r.Decoder(ctx, id)
	return c, err
}

// Decoder returns the codec of schema id and its JSONDecoder, fetching the
// schema once. The decoder is nil for a schema NewJSONDecoder leaves to
// goavro (ErrUnsupportedSchema); decode with the codec then.
func (r *Registry) Decoder(ctx context.Context, id int) (*goavro.Codec, *JSONDecoder, error) {
	r.mu.RLock()
	c, ok := r.codecs[id]
	d := r.decoders[id]
	bad := r.bad[id]
	r.mu.RUnlock()
	if ok {
		return c, d, nil
	}
	if bad != nil {
		return nil, nil, bad
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	s, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: schema id %d is not in the registry: %v", ErrPermanent, id, err)
			r.remember(id, nil, nil, err)
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("fetch schema id %d: %w", id, err)
	}
	if s.Type != sr.TypeAvro {
		err := fmt.Errorf("%w: schema id %d is %s, not Avro", ErrPermanent, id, s.Type)
		r.remember(id, nil, nil, err)
		return nil, nil, err
	}
	c, err = NewCodec(s.Schema)
	if err == nil && !IsRecord(s.Schema) {
		err = errors.New("the schema must be a record (an event body is an object)")
	}
	if err != nil {
		err = fmt.Errorf("%w: schema id %d: %v", ErrPermanent, id, err)
		r.remember(id, nil, nil, err)
		return nil, nil, err
	}
	// goavro has accepted the schema; the JSON decoder is the fast path
	// for it, goavro the fallback for what the decoder leaves out.
	d, _ = NewJSONDecoder(s.Schema)
	r.remember(id, c, d, nil)
	return c, d, nil
}

func (r *Registry) remember(id int, c *goavro.Codec, d *JSONDecoder, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad[id] = err
		return
	}
	r.codecs[id] = c
	if d != nil {
		r.decoders[id] = d
	}
}

// Register registers schema under subject (or finds it registered) and
// returns its ID.
func (r *Registry) Register(ctx context.Context, subject, schema string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// POST /subjects/{subject}/versions answers the ID of the schema,
	// registering it if the subject does not have it yet.
	id, err := r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("register schema under subject %q: %w", subject, err)
	}
	return id, nil
}

// Magic is the first byte of a Confluent-framed record.
const Magic = 0

// ErrNotFramed is the reason for a payload without the Confluent header.
var ErrNotFramed = errors.New("payload is not in the schema-registry wire format (magic byte 0 and a 4-byte schema id)")

// SplitFrame returns the schema ID and the Avro binary of a framed payload.
func SplitFrame(b []byte) (int, []byte, error) {
	if len(b) < 5 || b[0] != Magic {
		return 0, nil, ErrNotFramed
	}
	id := int(uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]))
	return id, b[5:], nil
}

// AppendFrame appends the Confluent header for schema id.
func AppendFrame(b []byte, id int) []byte {
	return append(b, Magic, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}
