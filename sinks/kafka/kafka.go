// Package kafka is the Kafka sink: keyed, murmur2-partitioned writes
// acknowledged by all in-sync replicas.
package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/sluicehq/sluice/internal/kafkaconn"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `kafka` sink's YAML.
type Config struct {
	Brokers []string `yaml:"brokers" required:"true"`
	// Topic may be a template: "crm.{{source}}".
	Topic pipeline.Template `yaml:"topic" required:"true"`
	// Key is a body field path ("data.Id") or a template
	// ("{{source}}:{{data.Id}}"); default the event's key.
	Key string `yaml:"key"`
	// Compression: none, gzip, snappy, lz4 or zstd.
	Compression string      `yaml:"compression" enum:"none,gzip,snappy,lz4,zstd"`
	Batch       BatchConfig `yaml:"batch"`
	// RequiredAcks: all (default), one or none.
	RequiredAcks string `yaml:"required_acks" enum:"all,one,none"`
	// MaxMessageBytes bounds one record; a larger event is dead-lettered.
	MaxMessageBytes pipeline.ByteSize `yaml:"max_message_bytes"`
	WriteTimeout    pipeline.Duration `yaml:"write_timeout"`
	// AutoCreateTopics lets the broker create missing topics (off: a
	// missing topic is retried until someone creates it).
	AutoCreateTopics bool                `yaml:"auto_create_topics"`
	TLS              *pipeline.TLSConfig `yaml:"tls"`
	SASL             *kafkaconn.SASL     `yaml:"sasl"`
}

// BatchConfig is kafka-go's per-partition batching inside one Write.
type BatchConfig struct {
	MaxEvents int               `yaml:"max_events"`
	MaxWait   pipeline.Duration `yaml:"max_wait"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Compression = "none"
	c.RequiredAcks = "all"
	// A write waits max_wait for every partition batch that is not full,
	// so it must be short: the runner has already batched.
	c.Batch = BatchConfig{MaxEvents: 1000, MaxWait: pipeline.Duration(5 * time.Millisecond)}
	c.MaxMessageBytes = 1 << 20
	c.WriteTimeout = pipeline.Duration(10 * time.Second)
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	if err := kafkaconn.ValidateBrokers(c.Brokers); err != nil {
		errs = append(errs, err)
	}
	if _, err := codec(c.Compression); err != nil {
		errs = append(errs, pipeline.FieldErrorf("compression", "%v", err))
	}
	if _, err := acks(c.RequiredAcks); err != nil {
		errs = append(errs, pipeline.FieldErrorf("required_acks", "%v", err))
	}
	if c.Key != "" {
		if _, err := pipeline.ParseFieldTemplate(c.Key); err != nil {
			errs = append(errs, pipeline.FieldErrorf("key", "%v", err))
		}
	}
	if c.Batch.MaxEvents < 1 {
		errs = append(errs, pipeline.FieldErrorf("batch.max_events", "must be at least 1"))
	}
	if c.Batch.MaxWait <= 0 {
		errs = append(errs, pipeline.FieldErrorf("batch.max_wait", "must be more than 0"))
	}
	if c.MaxMessageBytes < 1024 {
		errs = append(errs, pipeline.FieldErrorf("max_message_bytes", "must be at least 1KiB"))
	}
	return errors.Join(errs...)
}

func codec(name string) (compress.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafkago.Gzip, nil
	case "snappy":
		return kafkago.Snappy, nil
	case "lz4":
		return kafkago.Lz4, nil
	case "zstd":
		return kafkago.Zstd, nil
	}
	return 0, fmt.Errorf("must be none, gzip, snappy, lz4 or zstd; got %q", name)
}

func acks(name string) (kafkago.RequiredAcks, error) {
	switch name {
	case "all":
		return kafkago.RequireAll, nil
	case "one":
		return kafkago.RequireOne, nil
	case "none":
		return kafkago.RequireNone, nil
	}
	return 0, fmt.Errorf("must be all, one or none; got %q", name)
}

// Register adds the kafka sink to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSink(r, "kafka", "keyed records to a Kafka topic (murmur2 partitioning, acks=all)", func(bc pipeline.BuildContext, c *Config) (pipeline.Sink, error) {
		return New(bc, *c)
	})
}

// Sink writes events as records.
type Sink struct {
	cfg   Config
	w     *kafkago.Writer
	key   *pipeline.Template
	topic *pipeline.Template
	log   *slog.Logger

	// The broker probe behind Ready: a webhook receiver whose brokers are
	// unreachable must leave its Service rather than take requests it can
	// only answer 503.
	conn      *kafkaconn.Conn
	ready     pipeline.Readiness
	stopProbe context.CancelFunc
	probeDone chan struct{}
}

// Probe intervals: while ready, and while not (to come back quickly).
const (
	probeEvery      = 5 * time.Second
	probeEveryUnfit = time.Second
)

// New builds the sink's writer; it connects on the first write.
func New(bc pipeline.BuildContext, c Config) (*Sink, error) {
	log := bc.Logger
	conn, err := kafkaconn.New(c.Brokers, c.TLS, c.SASL)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	if conn.PlainWithoutTLS {
		log.Warn(kafkaconn.PlainWithoutTLSWarning)
	}
	comp, _ := codec(c.Compression)
	ack, _ := acks(c.RequiredAcks)
	s := &Sink{cfg: c, log: log, topic: &c.Topic}
	if c.Key != "" {
		if s.key, err = pipeline.ParseFieldTemplate(c.Key); err != nil {
			return nil, err
		}
	}
	s.w = &kafkago.Writer{
		Addr: kafkago.TCP(conn.Brokers...),
		// The Java client's partitioner, so every client agrees on which
		// partition a key lives in.
		Balancer:               &kafkago.Murmur2Balancer{},
		RequiredAcks:           ack,
		BatchSize:              c.Batch.MaxEvents,
		BatchTimeout:           c.Batch.MaxWait.D(),
		BatchBytes:             int64(c.MaxMessageBytes),
		WriteTimeout:           c.WriteTimeout.D(),
		Compression:            comp,
		AllowAutoTopicCreation: c.AutoCreateTopics,
		// The runner retries with backoff and per-event classification;
		// retrying here as well would multiply the attempts.
		MaxAttempts: 1,
		Transport:   conn.Transport(),
	}
	if c.Topic.Static() {
		s.w.Topic = c.Topic.String()
	}
	s.conn = conn
	notYet := errors.New("kafka sink: brokers not reached yet")
	s.ready.Set(notYet)
	return s, nil
}

// Start begins probing the brokers; until a probe succeeds the sink
// reports itself not ready. It does not wait for them: a broker outage at
// start is retried like one later.
func (s *Sink) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopProbe, s.probeDone = cancel, make(chan struct{})
	go func() {
		defer close(s.probeDone)
		warned := false
		for {
			wait := probeEvery
			if err := s.probe(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.ready.Set(err)
				if !warned { // once per outage, the one at start included
					s.log.Warn("kafka sink not ready", "err", err)
					warned = true
				}
				wait = probeEveryUnfit
			} else if prev := s.ready.Set(nil); prev != nil {
				s.log.Info("kafka sink ready", "brokers", pipeline.RedactURLs(s.cfg.Brokers))
				warned = false
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return nil
}

// probe asks the brokers for metadata: of the topic when it is static, so
// a missing topic that will not be created shows too. Each probe uses a
// transport of its own: the writer's answers metadata from its cache, and
// Conn.ReadPartitions would ask the broker to create a missing topic.
func (s *Sink) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, cmp.Or(s.cfg.WriteTimeout.D(), 10*time.Second))
	defer cancel()
	t := s.conn.Transport()
	defer t.CloseIdleConnections()
	var topics []string
	if s.w.Topic != "" {
		topics = []string{s.w.Topic}
		t.MetadataTopics = topics
	}
	c := &kafkago.Client{Addr: s.w.Addr, Transport: t}
	resp, err := c.Metadata(pctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("kafka sink: brokers %s unreachable: %w", strings.Join(s.cfg.Brokers, ","), err)
	}
	for _, tp := range resp.Topics {
		if tp.Error != nil && !(s.cfg.AutoCreateTopics && errors.Is(tp.Error, kafkago.UnknownTopicOrPartition)) {
			return fmt.Errorf("kafka sink: topic %s: %w", tp.Name, tp.Error)
		}
	}
	return nil
}

// Ready reports the last probe's failure, if any.
func (s *Sink) Ready() error { return s.ready.Ready() }

// Write produces one record per event and waits for the broker's acks.
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	msgs := make([]kafkago.Message, 0, len(batch))
	index := make([]int, 0, len(batch)) // msgs[i] is batch[index[i]]
	be := pipeline.NewBatchError()
	for i, ev := range batch {
		m, err := s.message(ev)
		if err != nil {
			be.Fail(i, pipeline.Permanent(err))
			continue
		}
		msgs = append(msgs, m)
		index = append(index, i)
	}
	if len(msgs) > 0 {
		err := s.w.WriteMessages(ctx, msgs...)
		var werrs kafkago.WriteErrors
		switch {
		case err == nil:
		case errors.As(err, &werrs):
			var tooLarge []msgError // msgs refused in a batch that was too large as a whole
			for j, werr := range werrs {
				switch {
				case werr == nil:
				case isTooLarge(werr):
					tooLarge = append(tooLarge, msgError{j, werr})
				default:
					be.Fail(index[j], classify(fmt.Errorf("produce to %s: %w", msgs[j].Topic+s.w.Topic, werr)))
				}
			}
			for _, j := range s.resendAlone(ctx, msgs, tooLarge) {
				be.Fail(index[j.i], classify(fmt.Errorf("produce to %s: %w", msgs[j.i].Topic+s.w.Topic, j.err)))
			}
		case be.Len() == 0:
			return classify(fmt.Errorf("produce %d records: %w", len(msgs), err))
		default:
			for j := range msgs {
				be.Fail(index[j], classify(fmt.Errorf("produce: %w", err)))
			}
		}
	}
	return be.Err()
}

func (s *Sink) message(ev *pipeline.Event) (kafkago.Message, error) {
	var m kafkago.Message
	if s.w.Topic == "" {
		topic, err := s.topic.RenderString(ev)
		if err != nil {
			return m, err
		}
		m.Topic = topic
	}
	m.Key = ev.Key
	if pipeline.IsDeadLetter(ev) {
		// The original record, byte for byte, with the failure in
		// sluice.dead_letter.* headers: `sluice replay` writes it back as
		// it arrived.
		m.Value = ev.Payload
	} else if s.key != nil {
		k, err := s.key.Render(nil, ev)
		if err != nil {
			return m, fmt.Errorf("record key: %w", err)
		}
		m.Key = k
	}
	if m.Value == nil {
		m.Value = ev.Body
	}
	if m.Value == nil {
		m.Value = ev.Payload
	}
	if size := len(m.Value) + len(m.Key); size > int(s.cfg.MaxMessageBytes) {
		return m, fmt.Errorf("event %s is %d bytes, over max_message_bytes (%d)", ev.ID, size, s.cfg.MaxMessageBytes)
	}
	m.Headers = headers(ev)
	if !ev.Time.IsZero() {
		m.Time = ev.Time
	}
	return m, nil
}

// headers carry the event id, the sluice.* facts (dead-letter reasons) and
// the Kafka headers the event arrived with.
func headers(ev *pipeline.Event) []kafkago.Header {
	hs := make([]kafkago.Header, 0, 1+len(ev.Meta))
	hs = append(hs, kafkago.Header{Key: pipeline.MetaDeadLetterID, Value: []byte(ev.ID)})
	for _, p := range ev.Meta {
		switch {
		case strings.HasPrefix(p.Key, "sluice."):
			hs = append(hs, kafkago.Header{Key: p.Key, Value: []byte(p.Value)})
		case strings.HasPrefix(p.Key, "kafka.header."):
			hs = append(hs, kafkago.Header{Key: strings.TrimPrefix(p.Key, "kafka.header."), Value: []byte(p.Value)})
		}
	}
	return hs
}

// isTooLarge reports the broker's or the client's refusal of a record batch
// for its size.
func isTooLarge(err error) bool {
	var kerr kafkago.Error
	var tooLarge kafkago.MessageTooLargeError
	return errors.As(err, &tooLarge) ||
		errors.As(err, &kerr) && (kerr == kafkago.MessageSizeTooLarge || kerr == kafkago.RecordListTooLarge)
}

type msgError struct {
	i   int
	err error
}

// resendAlone writes each of the refused msgs in a request of its own. The broker
// checks max.message.bytes against a whole record batch and refuses all of
// it, so small records that shared a partition batch with one too large
// record got the same error: only a record still refused alone is too
// large. This is shaping, like the Elasticsearch sink's 413 split, not a
// retry. It returns the records that still failed.
func (s *Sink) resendAlone(ctx context.Context, msgs []kafkago.Message, refused []msgError) []msgError {
	if len(refused) <= 1 {
		return refused
	}
	var failed []msgError
	for _, r := range refused {
		j := r.i
		err := s.w.WriteMessages(ctx, msgs[j])
		var werrs kafkago.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == 1 {
			err = werrs[0]
		}
		if err != nil {
			failed = append(failed, msgError{j, err})
		}
	}
	return failed
}

// classify marks the broker errors that a retry cannot fix.
func classify(err error) error {
	var kerr kafkago.Error
	var tooLarge kafkago.MessageTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return pipeline.Permanent(err)
	case errors.As(err, &kerr):
		switch kerr {
		case kafkago.MessageSizeTooLarge, kafkago.RecordListTooLarge, kafkago.InvalidRecord,
			kafkago.InvalidMessage, kafkago.InvalidTopic, kafkago.TopicAuthorizationFailed:
			return pipeline.Permanent(err)
		}
	}
	return err
}

// Close stops the probe, then flushes and closes the writer.
func (s *Sink) Close(context.Context) error {
	if s.stopProbe != nil {
		s.stopProbe()
		<-s.probeDone
	}
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("kafka sink: close: %w", err)
	}
	return nil
}
