// Package bench is the harness behind `sluice bench`: it drives a real
// pipeline with the generate workload, measures throughput, latency, lag,
// CPU and memory, and audits the stores for lost and duplicated events.
package bench

import (
	"fmt"
	"time"
)

// Phase is a stretch of load at one rate.
type Phase struct {
	Name     string
	Rate     float64 // events/s; 0 = as fast as the producer goes
	Duration time.Duration
	Count    int64 // for Rate 0: how many events
}

// Profile is a named load shape.
type Profile struct {
	Name   string
	Phases []Phase
}

// Events is how many events the profile sends.
func (p Profile) Events() int64 {
	var n int64
	for _, ph := range p.Phases {
		if ph.Rate > 0 {
			n += int64(ph.Rate * ph.Duration.Seconds())
		} else {
			n += ph.Count
		}
	}
	return n
}

// The production figures from the design notes.
const (
	PeakRate  = 200000.0 / 60  // 200k events/min
	BurstRate = 1000000.0 / 60 // 1M events/min
)

// NewProfile builds a named profile: peak (PeakRate for d), burst
// (BurstRate for 60s, then PeakRate for d while lag recovers), max (count
// events as fast as they go).
func NewProfile(name string, d time.Duration, count int64) (Profile, error) {
	switch name {
	case "peak":
		return Profile{Name: name, Phases: []Phase{{Name: "peak", Rate: PeakRate, Duration: d}}}, nil
	case "burst":
		return Profile{Name: name, Phases: []Phase{
			{Name: "burst", Rate: BurstRate, Duration: min(60*time.Second, d)},
			{Name: "recover", Rate: PeakRate, Duration: d},
		}}, nil
	case "max":
		return Profile{Name: name, Phases: []Phase{{Name: "max", Count: count}}}, nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q (peak, burst, max, engine)", name)
}
