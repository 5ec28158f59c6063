package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The fault classes of the chaos profile.
const (
	FaultKill9       = "kill9"        // SIGKILL a consumer, then start it again
	FaultSIGTERM     = "sigterm"      // stop a consumer gracefully, then start it again
	FaultRebalance   = "rebalance"    // add a group member, or remove the one added
	FaultStoreStall  = "store-stall"  // SIGSTOP a store server, SIGCONT it after --stall
	FaultStoreKill   = "store-kill"   // SIGKILL a store server, then run its restart hook
	FaultBrokerStall = "broker-stall" // SIGSTOP the broker(s) or kinesalite, SIGCONT after --stall
	FaultSIGSTOP     = "sigstop"      // SIGSTOP a consumer past its lease or session, then SIGCONT it
	FaultSplit       = "split"        // split a Kinesis shard (SplitShard) mid-run
	FaultBrokerKill  = "broker-kill"  // SIGKILL one of ≥ 3 Kafka brokers, restart it after --stall
)

// FaultClasses lists every class, consumer faults first.
var FaultClasses = []string{FaultKill9, FaultSIGTERM, FaultRebalance, FaultSIGSTOP, FaultStoreStall, FaultStoreKill, FaultBrokerStall, FaultBrokerKill, FaultSplit}

// streamOnly are the classes one stream has and the other has not, with
// why.
var streamOnly = map[string]struct{ stream, why string }{
	FaultSplit: {"kinesis", "a Kafka topic has no shard split (partitions are only added, and the bench's keys would move)"},
	FaultBrokerKill: {"kafka", "kinesalite keeps its streams in RAM: a killed one comes back empty, which no consumer can survive " +
		"(broker-stall stops it instead)"},
}

// ParseFaults reads a comma-separated list of fault classes; an unknown or
// repeated class, or an empty list, is an error.
func ParseFaults(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(FaultClasses, f) {
			return nil, fmt.Errorf("unknown fault class %q (known: %s)", f, strings.Join(FaultClasses, ", "))
		}
		if slices.Contains(out, f) {
			return nil, fmt.Errorf("fault class %q is listed twice", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fault classes in %q (known: %s)", s, strings.Join(FaultClasses, ", "))
	}
	return out, nil
}

// ParseEvery reads the pause between faults: "10s" or a range "5s-15s"
// from which each pause is drawn (seeded).
func ParseEvery(s string) (lo, hi time.Duration, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if lo, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("fault-every %q: %w", s, err)
	}
	hi = lo
	if isRange {
		if hi, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
			return 0, 0, fmt.Errorf("fault-every %q: %w", s, err)
		}
	}
	if lo <= 0 || hi < lo {
		return 0, 0, fmt.Errorf("fault-every %q: want a positive duration or a range MIN-MAX with MIN <= MAX", s)
	}
	return lo, hi, nil
}

// validate refuses a chaos run whose schedule cannot be honoured, before
// anything is started.
func (c ChaosOptions) validate() error {
	var errs []error
	if c.Stream != "" && c.Stream != "kafka" && c.Stream != "kinesis" {
		errs = append(errs, fmt.Errorf("--stream %s: the chaos profile drives kafka or kinesis", c.Stream))
	}
	stream := c.Stream
	if stream == "" {
		stream = "kafka"
	}
	for _, f := range c.Faults {
		if only, ok := streamOnly[f]; ok && only.stream != stream {
			errs = append(errs, fmt.Errorf("fault class %s does not apply to --stream %s: %s", f, stream, only.why))
		}
	}
	if c.Binary == "" {
		errs = append(errs, errors.New("the chaos profile runs its consumers as `sluice run` processes: Binary is required"))
	}
	if c.Consumers < 1 {
		errs = append(errs, fmt.Errorf("--consumers %d: need at least one consumer", c.Consumers))
	}
	if c.Rate <= 0 || c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("the producer needs a positive --rate and --duration (have %g/s for %s)", c.Rate, c.Duration))
	}
	if len(c.Faults) == 0 {
		errs = append(errs, errors.New("no fault classes (--faults)"))
	}
	for _, f := range c.Faults {
		if !slices.Contains(FaultClasses, f) {
			errs = append(errs, fmt.Errorf("unknown fault class %q", f))
		}
	}
	if c.EveryMin <= 0 || c.EveryMax < c.EveryMin {
		errs = append(errs, fmt.Errorf("fault-every %s-%s: want 0 < MIN <= MAX", c.EveryMin, c.EveryMax))
	} else if c.MinFaults == 0 && c.EveryMin >= c.Duration {
		errs = append(errs, fmt.Errorf("no fault would be injected: the first comes at least %s in, but the producer runs for %s (shorten --fault-every or lengthen --duration)", c.EveryMin, c.Duration))
	}
	needsStall := slices.Contains(c.Faults, FaultStoreStall) || slices.Contains(c.Faults, FaultBrokerStall) || slices.Contains(c.Faults, FaultBrokerKill)
	if needsStall && c.Stall <= 0 {
		errs = append(errs, fmt.Errorf("--stall %s: a stall needs a positive duration", c.Stall))
	}
	for name := range c.RestartCmd {
		if strings.TrimSpace(c.RestartCmd[name]) == "" {
			errs = append(errs, fmt.Errorf("--restart-cmd %s= has no command", name))
		}
	}
	return errors.Join(errs...)
}

// Validate refuses what RunChaos would refuse up front (unknown fault
// classes, impossible schedules, faults that do not apply to the stream),
// without contacting a server or starting a process.
func (c ChaosOptions) Validate() error {
	_, err := c.withDefaults()
	return err
}
