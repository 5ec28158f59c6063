package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteChaos prints a chaos run: the figures, the fault timeline with each
// recovery, the faults skipped here, events re-read, peak RSS per consumer
// and, last, the audit line.
func WriteChaos(w io.Writer, r *Result) {
	fmt.Fprintf(w, "profile chaos on %s\n", r.Machine)
	row := func(k, v string) { fmt.Fprintf(w, "  %-34s %s\n", k, v) }
	row("duration", fmt.Sprintf("%.1fs", r.Seconds))
	row("events sent / read by the group", fmt.Sprintf("%d / at least %d", r.Sent, r.Settled))
	row("events re-read (redeliveries)", fmt.Sprintf("at least %d (%.1f%% of sent)", r.Reread, 100*float64(r.Reread)/float64(max(1, r.Sent))))
	row("committed mean / peak", fmt.Sprintf("%.0f / %.0f events/s", r.MeanRate, r.PeakRate))
	row("max lag (committed offsets)", fmt.Sprintf("%d events", r.MaxLag))
	row("drained by", r.DrainedBy)
	var rss []string
	for _, c := range r.Consumers {
		rss = append(rss, fmt.Sprintf("#%d %.0f MiB (%d processes)", c.Slot, c.PeakRSSMiB, c.Processes))
	}
	row("peak RSS per consumer (VmHWM)", strings.Join(rss, ", "))
	fmt.Fprintln(w, "fault timeline:")
	if len(r.Faults) == 0 {
		fmt.Fprintln(w, "  (no fault was injected)")
	}
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  %7.1fs  %-12s %s, took %.1fs, %s%s\n", f.At, f.Class, f.Target, f.Took, recovery(f), errSuffix(f.Err))
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "  skipped  "+s)
	}
	fmt.Fprintln(w, r.Cleanup.Line())
	if r.Audit.Sent == 0 {
		fmt.Fprintln(w, "audit: not run: the run did not finish (see the error)")
		return
	}
	fmt.Fprintln(w, r.Audit.Line())
	if r.Audit.Order != nil {
		fmt.Fprintln(w, orderSummary(r.Audit.Order))
	}
}

func recovery(f FaultRecord) string {
	switch {
	case f.RecoveredAfter > 0:
		return fmt.Sprintf("lag back under 1s of traffic after %.0fs", f.RecoveredAfter)
	case f.RecoveredAfter < 0:
		return "lag NOT back under 1s of traffic by the end"
	}
	return "lag stayed under 1s of traffic"
}
