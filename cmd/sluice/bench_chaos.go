package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/bench"
)

// chaosFlags are `sluice bench --profile chaos`'s own flags.
type chaosFlags struct {
	consumers, minFaults int
	rate                 float64
	faults, every        string
	stall                time.Duration
	pidDir               string
	restart              []string
}

func (c *chaosFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&c.consumers, "consumers", 3, "chaos: consumer processes in the group")
	f.Float64Var(&c.rate, "rate", 1000, "chaos: the producer's steady rate, events/s, for --duration")
	f.StringVar(&c.faults, "faults", "kill9,sigterm,rebalance", "chaos: fault classes: "+strings.Join(bench.FaultClasses, ","))
	f.StringVar(&c.every, "fault-every", "5s-15s", "chaos: pause before each fault, a duration or a range MIN-MAX (seeded by --seed)")
	f.IntVar(&c.minFaults, "min-faults", 0, "chaos: keep injecting after the load ended until this many faults were injected")
	f.DurationVar(&c.stall, "stall", 10*time.Second, "chaos: how long store-stall and broker-stall keep a server stopped, and broker-kill a broker down")
	f.StringVar(&c.pidDir, "pid-dir", "", "chaos: directory of <server>.pid files for server faults (mongo, elasticsearch, redis, kafka*); default $SLUICE_TESTENV_DIR/pids or .testenv/pids")
	f.StringArrayVar(&c.restart, "restart-cmd", nil, "chaos: NAME=COMMAND, a shell command that starts server NAME again after store-kill or broker-kill and rewrites its pid file (repeatable; kafka= applies to every broker; a broker without one is started again with its own command line)")
}

// runChaos runs the chaos profile and prints its report; the error is
// non-nil when the run did not drain or the audit found lost or
// duplicated events.
func runChaos(ctx context.Context, cmd *cobra.Command, c chaosFlags, base bench.Options, config string, duration time.Duration) error {
	faults, err := bench.ParseFaults(c.faults)
	if err != nil {
		return err
	}
	lo, hi, err := bench.ParseEvery(c.every)
	if err != nil {
		return err
	}
	restart := map[string]string{}
	for _, r := range c.restart {
		name, command, ok := strings.Cut(r, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("--restart-cmd %q: want NAME=COMMAND, e.g. mongo='SLUICE_TESTENV_KEEP_DATA=1 bash internal/testenv/up.sh'", r)
		}
		restart[strings.TrimSpace(name)] = command
	}
	pidDir := c.pidDir
	if pidDir == "" {
		pidDir = filepath.Join(".testenv", "pids")
		if d := os.Getenv("SLUICE_TESTENV_DIR"); d != "" {
			pidDir = filepath.Join(d, "pids")
		}
	}

	if config != "" {
		if base.ConsumerConfig, err = os.ReadFile(config); err != nil {
			return err
		}
		base.ConsumerFile = config
	}
	co := bench.ChaosOptions{
		Options: base, Consumers: c.consumers, Rate: c.rate, Duration: duration,
		Faults: faults, EveryMin: lo, EveryMax: hi, MinFaults: c.minFaults, Stall: c.stall,
		PIDDir: pidDir, RestartCmd: restart,
	}
	v := co
	v.Binary = "sluice" // checked below; a refusal of the schedule comes first
	if err := v.Validate(); err != nil {
		return err
	}
	if co.Binary, err = sluiceBinary(); err != nil {
		return err
	}
	res, runErr := bench.RunChaos(ctx, co)
	return reportRun(cmd.OutOrStdout(), base.OutDir, res, runErr, bench.WriteChaos)
}
