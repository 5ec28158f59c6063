package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/kafkaconn"
	dlreplay "github.com/sluicehq/sluice/internal/replay"
	"github.com/sluicehq/sluice/pipeline"
	filesinks "github.com/sluicehq/sluice/sinks/file"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
)

type replayFlags struct {
	config, fromTopic, fromFile, toTopic, filter string
	brokers                                      []string
	tls                                          bool
	tlsCA, saslMechanism                         string
	dryRun                                       bool
}

func replayCmd(g *globalFlags, stderr io.Writer) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay (-c PIPELINE | --to-topic TOPIC) [--from-topic TOPIC | --from-file FILE] [--filter EXPR] [--dry-run]",
		Short: "Replay dead letters: the original records, to a topic or through a pipeline",
		Long: `Replay reads a dead-letter topic (or dead-letter file) up to the end offsets it
has when the replay starts, and stops by itself there: dead letters that arrive
later, such as events that fail again during the replay, are left for the next
replay. Each original record — key, payload byte for byte, original headers,
plus a sluice.replayed_from header — goes either

  -c PIPELINE   through that pipeline file's transforms and sinks (its source is
                not read); events that fail again go to its dead_letter with
                their new reason. Without --from-topic/--from-file the dead
                letters are read from the pipeline's own dead_letter (a kafka
                sink with a fixed topic, or a file sink), with its brokers,
                TLS and SASL.
  --to-topic T  to topic T, keyed as before, for the consumers to process again.
                Kafka settings come from --brokers, --tls, --tls-ca-file and
                --sasl-mechanism with KAFKA_USERNAME and KAFKA_PASSWORD.

--dry-run reads the same dead letters, writes nothing, and prints how many per
reason would be replayed. --filter keeps the dead letters an expression accepts:
  --filter 'component == "transforms[0].decode" && attempts < 3'
The expression sees ` + dlreplay.FilterHelp + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(g, stderr)
			if err != nil {
				return err
			}
			o, err := f.options()
			if err != nil {
				return err
			}
			o.Log, o.Progress = log, stderr
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, runErr := dlreplay.Run(ctx, o)
			if s != nil {
				dlreplay.WriteSummary(cmd.OutOrStdout(), s, o.DryRun)
			}
			return runErr
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "pipeline file whose transforms and sinks the originals go through")
	fl.StringVar(&f.toTopic, "to-topic", "", "topic the originals are written to")
	fl.StringVar(&f.fromTopic, "from-topic", "", "dead-letter topic to read (default: the pipeline's dead_letter topic)")
	fl.StringVar(&f.fromFile, "from-file", "", "dead-letter file (JSON lines) to read instead of a topic")
	fl.StringVar(&f.filter, "filter", "", "replay only the dead letters this expr-lang expression accepts")
	fl.BoolVar(&f.dryRun, "dry-run", false, "count what would be replayed, per reason; write nothing")
	fl.StringSliceVar(&f.brokers, "brokers", nil, "Kafka brokers host:port (default: the pipeline's dead_letter brokers)")
	fl.BoolVar(&f.tls, "tls", false, "connect to Kafka with TLS")
	fl.StringVar(&f.tlsCA, "tls-ca-file", "", "PEM CA certificates for Kafka's TLS")
	fl.StringVar(&f.saslMechanism, "sasl-mechanism", "", "plain, scram-sha-256 or scram-sha-512; credentials from KAFKA_USERNAME and KAFKA_PASSWORD")
	return cmd
}

// options turns the flags into replay options, taking what is not given
// from the pipeline file's dead_letter.
func (f *replayFlags) options() (dlreplay.Options, error) {
	o := dlreplay.Options{FromTopic: f.fromTopic, FromFile: f.fromFile, ToTopic: f.toTopic, Filter: f.filter, DryRun: f.dryRun, Brokers: f.brokers}
	if f.config != "" && f.toTopic != "" {
		return o, errors.New("replay: give -c or --to-topic, not both")
	}
	if f.tls || f.tlsCA != "" {
		o.TLS = &pipeline.TLSConfig{Enabled: true, CAFile: f.tlsCA}
	}
	if f.saslMechanism != "" {
		o.SASL = &kafkaconn.SASL{Mechanism: f.saslMechanism, Username: os.Getenv("KAFKA_USERNAME"), Password: os.Getenv("KAFKA_PASSWORD")}
		if err := o.SASL.Validate(); err != nil {
			return o, fmt.Errorf("--sasl-mechanism: %w", err)
		}
	}
	if f.config == "" {
		return o, nil
	}
	reg := registry()
	cfg, err := pipeline.LoadFile(f.config, reg, os.LookupEnv)
	if err != nil {
		return o, err
	}
	o.Pipeline, o.Registry = cfg, reg
	if o.FromTopic != "" || o.FromFile != "" {
		if len(o.Brokers) == 0 {
			// The dead-letter topic lives on the pipeline's cluster.
			fromDeadLetter(cfg, &o, false)
		}
		return o, nil
	}
	if !fromDeadLetter(cfg, &o, true) {
		return o, fmt.Errorf("replay: %s has no kafka (fixed topic) or file dead_letter to read; give --from-topic or --from-file", f.config)
	}
	return o, nil
}

// fromDeadLetter fills the Kafka connection (and, with where, the topic or
// file) from cfg's dead_letter sink.
func fromDeadLetter(cfg *pipeline.Config, o *dlreplay.Options, where bool) bool {
	if cfg.DeadLetter == nil {
		return false
	}
	switch c := cfg.DeadLetter.Config.(type) {
	case *kafkasink.Config:
		if where && !c.Topic.Static() {
			return false
		}
		if len(o.Brokers) == 0 {
			o.Brokers, o.TLS, o.SASL = c.Brokers, c.TLS, c.SASL
		}
		if where {
			o.FromTopic = c.Topic.String()
		}
		return true
	case *filesinks.Config:
		if where {
			o.FromFile = c.Path
		}
		return where
	}
	return false
}
