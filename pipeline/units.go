package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as "100ms", "10m", "1h30m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration strings; a bare 0 means zero.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration like 100ms or 10m")
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use a number with a unit: 100ms, 30s, 10m, 1h)", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written in YAML as "4MiB", "512KB" or a plain number
// of bytes.
type ByteSize int64

// UnmarshalYAML accepts sizes in IEC (KiB, MiB) or SI (KB, MB) units.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size like 4MiB or 512KB")
	}
	v, err := humanize.ParseBytes(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a size (use a number with a unit: 512KiB, 4MiB, 1GB)", n.Value)
	}
	*s = ByteSize(v)
	return nil
}

// Rate is an event rate written as "3333/s", "200000/min" or "1000/h".
type Rate struct {
	PerSecond float64
}

// UnmarshalYAML parses N/unit.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a rate like 3333/s or 200000/min")
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRate parses "N/s", "N/min", "N/h" (N may be fractional).
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate (write events per unit: 3333/s, 200000/min)", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !(f > 0) || math.IsInf(f, 1) {
		return Rate{}, fmt.Errorf("%q is not a rate: %q is not a positive number", s, num)
	}
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
	case "m", "min", "minute":
		f /= 60
	case "h", "hour":
		f /= 3600
	default:
		return Rate{}, fmt.Errorf("%q is not a rate: unit %q is not one of s, min, h", s, unit)
	}
	return Rate{PerSecond: f}, nil
}
