package mongodb

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/pipeline"
)

// Modes of writing an event.
const (
	ModeInsert  = "insert"
	ModeReplace = "replace"
	ModeUpsert  = "upsert"
)

// Config is the `mongodb` sink's YAML.
type Config struct {
	// URI carries hosts, auth, TLS and replica-set options:
	// mongodb://user:pass@h1,h2/?replicaSet=rs0&tls=true&authSource=admin.
	URI      string `yaml:"uri" required:"true"`
	Database string `yaml:"database" required:"true"`
	// Collection may be a template: "{{source}}_events".
	Collection pipeline.Template `yaml:"collection" required:"true"`
	// Mode: insert (default), replace or upsert.
	Mode string `yaml:"mode" enum:"insert,replace,upsert"`
	// ID is a body field path ("data.Id") or a template
	// ("{{source}}:{{data.Id}}") giving _id; default the event's ID.
	ID string `yaml:"id"`
	// Update says what an upsert does to the entity's document.
	Update UpdateConfig `yaml:"update"`
	// WriteConcern: majority (default) or a number of nodes (1, 2, ...).
	WriteConcern string `yaml:"write_concern"`
	// Journal asks for j:true with the write concern (default true).
	Journal bool `yaml:"journal"`
	// MaxBatch bounds the operations of one bulk write.
	MaxBatch int `yaml:"max_batch"`
	// Parallelism is how many bulk writes one Write runs at once.
	Parallelism int `yaml:"parallelism"`
	// MaxDocumentBytes: a larger document is dead-lettered without a round
	// trip (MongoDB's limit is 16MiB).
	MaxDocumentBytes pipeline.ByteSize `yaml:"max_document_bytes"`
	// WriteTimeout bounds one Write (every bulk of a batch).
	WriteTimeout pipeline.Duration `yaml:"write_timeout"`
	// ConnectTimeout bounds Start: connecting, authenticating, pinging
	// and ensuring indexes.
	ConnectTimeout pipeline.Duration `yaml:"connect_timeout"`
	// Indexes are created at start when missing.
	Indexes []IndexConfig `yaml:"indexes"`
}

// UpdateConfig shapes mode: upsert. Values are expressions: a body field
// path ("data.Email"), or $id, $key, $time (the event time as a date) or
// $body (the whole body). A field the event lacks leaves the target alone.
type UpdateConfig struct {
	// SetBody $sets every top-level field of the body. It is the default
	// when no operator below is given.
	SetBody *bool `yaml:"set_body"`
	// Set: target field -> expression.
	Set map[string]string `yaml:"set"`
	// SetOnInsert: target field -> expression, written only when the
	// upsert creates the document.
	SetOnInsert map[string]string `yaml:"set_on_insert"`
	// Inc: target field -> amount.
	Inc map[string]int64 `yaml:"inc"`
	// Max: target field -> expression; keeps the larger value.
	Max map[string]string `yaml:"max"`
	// Push: target array -> entry; keeps the last `keep` entries.
	Push map[string]PushConfig `yaml:"push"`
	// AppliedField holds the ids of the last AppliedKeep events applied to
	// the document, which makes a redelivered event a no-op.
	AppliedField string `yaml:"applied_field"`
	AppliedKeep  int    `yaml:"applied_keep"`
}

// PushConfig appends one entry per event to a bounded array.
type PushConfig struct {
	// Value: entry field -> expression.
	Value map[string]string `yaml:"value" required:"true"`
	// Keep is how many of the newest entries stay.
	Keep int `yaml:"keep"`
}

// IndexConfig is one index ensured at start.
type IndexConfig struct {
	// Collection defaults to the sink's collection when that is static.
	Collection string `yaml:"collection"`
	// Keys in order; a leading "-" means descending: ["account_id", "-updated_at"].
	Keys   []string `yaml:"keys" required:"true"`
	Name   string   `yaml:"name"`
	Unique bool     `yaml:"unique"`
	Sparse bool     `yaml:"sparse"`
	// ExpireAfter makes a TTL index (the single key must hold dates).
	ExpireAfter pipeline.Duration `yaml:"expire_after"`
}

// SetDefaults fills the documented defaults. They suit a real MongoDB
// replica set; tests against small servers lower max_batch in config.
func (c *Config) SetDefaults() {
	c.Mode = ModeInsert
	c.WriteConcern = "majority"
	c.Journal = true
	c.MaxBatch = 1000
	c.Parallelism = 4
	c.MaxDocumentBytes = 16 << 20
	c.WriteTimeout = pipeline.Duration(30 * time.Second)
	c.ConnectTimeout = pipeline.Duration(10 * time.Second)
	c.Update.AppliedField = "_applied"
	c.Update.AppliedKeep = 100
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	if c.URI != "" {
		if err := options.Client().ApplyURI(c.URI).Validate(); err != nil {
			errs = append(errs, pipeline.FieldErrorf("uri", "%v", redactErr(err, c.URI)))
		}
	}
	if c.Database == "" || strings.ContainsAny(c.Database, "/\\. \"$") {
		errs = append(errs, pipeline.FieldErrorf("database", "must be a MongoDB database name (no /\\. \"$), got %q", c.Database))
	}
	switch c.Mode {
	case ModeInsert, ModeReplace, ModeUpsert:
	default:
		errs = append(errs, pipeline.FieldErrorf("mode", "must be insert, replace or upsert; got %q", c.Mode))
	}
	if c.ID != "" {
		if _, err := pipeline.ParseFieldTemplate(c.ID); err != nil {
			errs = append(errs, pipeline.FieldErrorf("id", "%v", err))
		}
	}
	if _, err := writeConcernW(c.WriteConcern); err != nil {
		errs = append(errs, pipeline.FieldErrorf("write_concern", "%v", err))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 100000 {
		errs = append(errs, pipeline.FieldErrorf("max_batch", "must be between 1 and 100000"))
	}
	if c.Parallelism < 1 {
		errs = append(errs, pipeline.FieldErrorf("parallelism", "must be at least 1"))
	}
	if c.MaxDocumentBytes < 1024 || c.MaxDocumentBytes > 16<<20 {
		errs = append(errs, pipeline.FieldErrorf("max_document_bytes", "must be between 1KiB and 16MiB"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf("write_timeout", "must be more than 0"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf("connect_timeout", "must be more than 0"))
	}
	if c.Mode == ModeUpsert {
		errs = append(errs, c.Update.validate()...)
	} else if !c.Update.empty() {
		errs = append(errs, pipeline.FieldErrorf("update", "only applies to mode: upsert (mode is %s)", c.Mode))
	}
	for i, ix := range c.Indexes {
		p := fmt.Sprintf("indexes[%d]", i)
		if ix.Collection == "" && !c.Collection.Static() {
			errs = append(errs, pipeline.FieldErrorf(p+".collection", "needed: the sink's collection is a template"))
		}
		if len(ix.Keys) == 0 {
			errs = append(errs, pipeline.FieldErrorf(p+".keys", "needs at least one key"))
		}
		for j, k := range ix.Keys {
			if strings.TrimPrefix(k, "-") == "" {
				errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("%s.keys[%d]", p, j), "empty key"))
			}
		}
		if ix.ExpireAfter < 0 || (ix.ExpireAfter > 0 && len(ix.Keys) != 1) {
			errs = append(errs, pipeline.FieldErrorf(p+".expire_after", "needs exactly one key and a positive duration"))
		}
	}
	return errors.Join(errs...)
}

func (u *UpdateConfig) empty() bool {
	return u.SetBody == nil && len(u.Set) == 0 && len(u.SetOnInsert) == 0 && len(u.Inc) == 0 && len(u.Max) == 0 && len(u.Push) == 0
}

// setBody reports whether the body's top-level fields are $set.
func (u *UpdateConfig) setBody() bool {
	if u.SetBody != nil {
		return *u.SetBody
	}
	return len(u.Set) == 0 && len(u.SetOnInsert) == 0 && len(u.Inc) == 0 && len(u.Max) == 0 && len(u.Push) == 0
}

// targets lists every configured target field with the key path that
// names it, sorted, so conflicts are reported in a stable order.
func (u *UpdateConfig) targets() [][2]string {
	var out [][2]string
	for k := range u.Set {
		out = append(out, [2]string{k, "update.set." + k})
	}
	for k := range u.SetOnInsert {
		out = append(out, [2]string{k, "update.set_on_insert." + k})
	}
	for k := range u.Inc {
		out = append(out, [2]string{k, "update.inc." + k})
	}
	for k := range u.Max {
		out = append(out, [2]string{k, "update.max." + k})
	}
	for k := range u.Push {
		out = append(out, [2]string{k, "update.push." + k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1] < out[j][1] })
	return out
}

func (u *UpdateConfig) validate() []error {
	var errs []error
	if u.AppliedField == "" || strings.ContainsAny(u.AppliedField, ".$") || u.AppliedField == "_id" {
		errs = append(errs, pipeline.FieldErrorf("update.applied_field", "must be a top-level field name other than _id"))
	}
	if u.AppliedKeep < 1 {
		errs = append(errs, pipeline.FieldErrorf("update.applied_keep", "must be at least 1 (it is what makes a redelivered event a no-op)"))
	}
	targets := u.targets()
	for _, t := range targets {
		if err := checkTarget(t[0]); err != nil {
			errs = append(errs, pipeline.FieldErrorf(t[1], "%v", err))
		}
	}
	// MongoDB rejects an update touching a path and its prefix; say so now
	// rather than dead-lettering every event.
	all := append(targets, [2]string{u.AppliedField, "update.applied_field"})
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if overlaps(all[i][0], all[j][0]) {
				errs = append(errs, pipeline.FieldErrorf(all[j][1], "conflicts with %s (MongoDB cannot update %q and %q at once)", all[i][1], all[i][0], all[j][0]))
			}
		}
	}
	exprs := func(section string, m map[string]string) {
		for k, v := range m {
			if err := checkExpr(v); err != nil {
				errs = append(errs, pipeline.FieldErrorf(section+"."+k, "%v", err))
			}
		}
	}
	exprs("update.set", u.Set)
	exprs("update.set_on_insert", u.SetOnInsert)
	exprs("update.max", u.Max)
	for k, p := range u.Push {
		if len(p.Value) == 0 {
			errs = append(errs, pipeline.FieldErrorf("update.push."+k+".value", "needs at least one field"))
		}
		exprs("update.push."+k+".value", p.Value)
		if p.Keep < 1 {
			errs = append(errs, pipeline.FieldErrorf("update.push."+k+".keep", "must be at least 1 (the array is bounded)"))
		}
	}
	return errs
}

func checkTarget(t string) error {
	if t == "" || t == "_id" || strings.HasPrefix(t, "_id.") {
		return fmt.Errorf("cannot target %q", t)
	}
	for _, part := range strings.Split(t, ".") {
		if part == "" || strings.HasPrefix(part, "$") {
			return fmt.Errorf("bad field path %q", t)
		}
	}
	return nil
}

func checkExpr(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("empty expression")
	case strings.HasPrefix(e, "$"):
		switch e {
		case exprID, exprKey, exprTime, exprBody:
			return nil
		}
		return fmt.Errorf("unknown %q: use a body field path, $id, $key, $time or $body", e)
	}
	return nil
}

// overlaps reports whether a and b are the same path or one is a prefix of
// the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// writeConcernW returns "majority" or the node count.
func writeConcernW(s string) (any, error) {
	if s == "majority" {
		return s, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("must be majority or a number of nodes; got %q", s)
	}
	return n, nil
}
