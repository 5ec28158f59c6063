package replay

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// maxReason is how much of a reason the table shows.
const maxReason = 96

// WriteTable prints the per-reason table of s.
func WriteTable(w io.Writer, s *Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNT\tCOMPONENT\tREASON")
	for _, rc := range s.ByReason {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", rc.Count, orDash(rc.Component), orDash(shorten(rc.Reason)))
	}
	fmt.Fprintf(tw, "%d\t\t(total)\n", s.Matched)
	_ = tw.Flush()
}

// WriteSummary prints what the replay did, the per-reason table first.
func WriteSummary(w io.Writer, s *Summary, dryRun bool) {
	WriteTable(w, s)
	fmt.Fprintf(w, "read %s: %d dead letters, %d matched the filter, %d skipped\n", s.From, s.Read, s.Matched, s.Skipped)
	if dryRun {
		fmt.Fprintf(w, "dry run: %d would be replayed; nothing was written\n", s.Matched)
		return
	}
	fmt.Fprintf(w, "replayed %d", s.Replayed)
	if s.NotReplayed > 0 {
		fmt.Fprintf(w, ", %d not replayed (run the replay again)", s.NotReplayed)
	}
	fmt.Fprintln(w)
	if st := s.Pipeline; st != nil {
		fmt.Fprintf(w, "pipeline: %d written, %d dropped, %d dead-lettered again (with their new reason), %d abandoned\n",
			st.Written, st.Dropped, st.DeadLettered, st.Abandoned)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shorten keeps a reason on one table line.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxReason {
		return s
	}
	r := []rune(s)
	return string(r[:maxReason-1]) + "…"
}
