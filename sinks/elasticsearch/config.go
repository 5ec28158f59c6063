package elasticsearch

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `elasticsearch` sink's YAML.
type Config struct {
	// URLs are the nodes requests are spread over (round robin).
	URLs []string `yaml:"urls" required:"true"`
	// Username and Password are HTTP basic auth; APIKey (the base64
	// "id:key" Elasticsearch hands out) replaces them.
	Username string              `yaml:"username"`
	Password string              `yaml:"password"`
	APIKey   string              `yaml:"api_key"`
	TLS      *pipeline.TLSConfig `yaml:"tls"`
	// Flavor is elasticsearch (default) or opensearch: the official client
	// refuses servers that do not say they are Elasticsearch, so OpenSearch
	// is spoken to through the client's transport without that check.
	Flavor string `yaml:"flavor" enum:"elasticsearch,opensearch"`
	// Index names the index per event: "crm-events-{2006.01.02}" (event
	// time, UTC) or "crm-{{source}}".
	Index pipeline.Template `yaml:"index" required:"true"`
	// ID is the document _id template; default the event's ID, so a
	// redelivered event overwrites itself.
	ID *pipeline.Template `yaml:"id"`
	// Action is index (default: create or replace), create (first write
	// wins; an existing document counts as stored) or update (merge into
	// the stored document, doc_as_upsert).
	Action string `yaml:"action" enum:"index,create,update"`
	// Routing is an optional shard routing template.
	Routing *pipeline.Template `yaml:"routing"`
	// Pipeline is an ingest pipeline every document goes through.
	Pipeline string `yaml:"pipeline"`
	// MaxBatch bounds one bulk request: a larger batch is split.
	MaxBatch MaxBatch `yaml:"max_batch"`
	// Compression is none (default) or gzip.
	Compression string `yaml:"compression" enum:"none,gzip"`
	// Parallelism is how many bulk requests of one batch are in flight at
	// once. Documents with the same index and _id always go in the same
	// request, in order.
	Parallelism int `yaml:"parallelism"`
	// Timeout bounds one bulk request.
	Timeout pipeline.Duration `yaml:"timeout"`
	// IndexTemplate, when set, is installed at start
	// (PUT _index_template/<name>).
	IndexTemplate *IndexTemplate `yaml:"index_template"`
}

// MaxBatch bounds one bulk request.
type MaxBatch struct {
	Events int               `yaml:"events"`
	Bytes  pipeline.ByteSize `yaml:"bytes"`
}

// IndexTemplate is a composable index template bootstrapped at start. Its
// body comes from exactly one of File and Body.
type IndexTemplate struct {
	Name string `yaml:"name" required:"true"`
	// File holds the template body as JSON (index_patterns, template, …).
	File string `yaml:"file"`
	// Body is the template body as JSON written in the pipeline file itself
	// (a YAML block scalar), for pipelines that ship as one file.
	Body string `yaml:"body"`
	// Overwrite replaces an existing template of that name; by default an
	// existing one is left alone (someone may manage it elsewhere).
	Overwrite bool `yaml:"overwrite"`
}

// The flavors and actions.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"

	ActionIndex  = "index"
	ActionCreate = "create"
	ActionUpdate = "update"
)

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Flavor = FlavorElasticsearch
	c.Action = ActionIndex
	c.MaxBatch = MaxBatch{Events: 1000, Bytes: 5 << 20}
	c.Compression = "none"
	c.Parallelism = 1
	c.Timeout = pipeline.Duration(30 * time.Second)
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	for i, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("urls[%d]", i), "%q is not an http:// or https:// URL", pipeline.RedactURL(u)))
		}
	}
	if c.APIKey != "" && (c.Username != "" || c.Password != "") {
		errs = append(errs, pipeline.FieldErrorf("api_key", "use either api_key or username/password, not both"))
	}
	if c.Username != "" && c.Password == "" {
		errs = append(errs, pipeline.FieldErrorf("password", "username is set without a password"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, pipeline.FieldErrorf("username", "password is set without a username"))
	}
	switch c.Flavor {
	case FlavorElasticsearch, FlavorOpenSearch:
	default:
		errs = append(errs, pipeline.FieldErrorf("flavor", "must be elasticsearch or opensearch; got %q", c.Flavor))
	}
	switch c.Action {
	case ActionIndex, ActionCreate, ActionUpdate:
	default:
		errs = append(errs, pipeline.FieldErrorf("action", "must be index, create or update; got %q", c.Action))
	}
	switch c.Compression {
	case "", "none", "gzip":
	default:
		errs = append(errs, pipeline.FieldErrorf("compression", "must be none or gzip; got %q", c.Compression))
	}
	if c.MaxBatch.Events < 1 {
		errs = append(errs, pipeline.FieldErrorf("max_batch.events", "must be at least 1"))
	}
	if c.MaxBatch.Bytes < 1024 {
		errs = append(errs, pipeline.FieldErrorf("max_batch.bytes", "must be at least 1KiB"))
	}
	if c.Parallelism < 1 || c.Parallelism > 64 {
		errs = append(errs, pipeline.FieldErrorf("parallelism", "must be between 1 and 64"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf("timeout", "must be more than 0"))
	}
	if t := c.IndexTemplate; t != nil {
		switch {
		case t.File == "" && t.Body == "":
			errs = append(errs, pipeline.FieldErrorf("index_template", "needs file or body (the template's JSON)"))
		case t.File != "" && t.Body != "":
			errs = append(errs, pipeline.FieldErrorf("index_template", "takes file or body, not both"))
		default:
			if _, err := t.body(); err != nil {
				key := "index_template.file"
				if t.Body != "" {
					key = "index_template.body"
				}
				errs = append(errs, pipeline.FieldErrorf(key, "%v", err))
			}
		}
	}
	return errors.Join(errs...)
}

func (t *IndexTemplate) body() ([]byte, error) {
	if t.Body != "" {
		if !json.Valid([]byte(t.Body)) {
			return nil, errors.New("is not valid JSON")
		}
		return []byte(t.Body), nil
	}
	b, err := os.ReadFile(t.File)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", t.File)
	}
	return b, nil
}
