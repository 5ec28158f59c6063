package top

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// Row is one component's rates between two snapshots (per second).
type Row struct {
	Key
	In, Out, Dropped, Dead float64
	Retries                map[string]float64
	// Busy is the component's call time per second: 1.0 is one lane busy
	// all the time. The largest Busy outside the source is the bottleneck
	// (a source's calls include waiting for new records).
	Busy       float64
	Bottleneck bool
}

// Rates turns two snapshots into rows, in pipeline order: source,
// transforms, sinks, dead letter.
func Rates(prev, cur *Snapshot) []Row {
	dt := cur.At.Sub(prev.At).Seconds()
	if dt <= 0 {
		dt = 1
	}
	rate := func(a, b float64) float64 { return math.Max(0, b-a) / dt }
	var rows []Row
	for k, c := range cur.Components {
		p := prev.Components[k]
		if p == nil {
			p = &Counters{Retries: map[string]float64{}}
		}
		r := Row{Key: k, In: rate(p.In, c.In), Out: rate(p.Out, c.Out), Dropped: rate(p.Dropped, c.Dropped),
			Dead: rate(p.Dead, c.Dead), Busy: rate(p.Seconds, c.Seconds), Retries: map[string]float64{}}
		for class, v := range c.Retries {
			if d := rate(p.Retries[class], v); d > 0 {
				r.Retries[class] = d
			}
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Pipeline != rows[j].Pipeline {
			return rows[i].Pipeline < rows[j].Pipeline
		}
		return order(rows[i].Component) < order(rows[j].Component)
	})
	// The bottleneck of each pipeline.
	best := map[string]int{}
	for i, r := range rows {
		if strings.HasPrefix(r.Component, "source") || r.Busy <= 0 {
			continue
		}
		if j, ok := best[r.Pipeline]; !ok || r.Busy > rows[j].Busy {
			best[r.Pipeline] = i
		}
	}
	for _, i := range best {
		rows[i].Bottleneck = true
	}
	return rows
}

var indexRe = regexp.MustCompile(`^(\w+)\[(\d+)\]`)

func order(component string) int {
	if strings.HasPrefix(component, "source") {
		return 0
	}
	if strings.HasPrefix(component, "dead_letter") {
		return 3_000_000
	}
	if m := indexRe.FindStringSubmatch(component); m != nil {
		n, _ := strconv.Atoi(m[2])
		if m[1] == "transforms" {
			return 1 + n
		}
		return 1_000_000 + n
	}
	return 2_000_000
}

var (
	headStyle  = lipgloss.NewStyle().Bold(true)
	hotStyle   = lipgloss.NewStyle().Bold(true).Reverse(true)
	errStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	faintStyle = lipgloss.NewStyle().Faint(true)
)

// Render draws the view of two snapshots (prev nil: the first scrape).
func Render(urls []string, prev, cur *Snapshot) string {
	var b strings.Builder
	up := len(urls) - len(cur.Errors)
	fmt.Fprintf(&b, "%s  %d/%d replicas · %s · q quits\n", headStyle.Render("sluice top"), up, len(urls), cur.At.Format("15:04:05"))
	errs := make([]string, 0, len(cur.Errors))
	for u, err := range cur.Errors {
		errs = append(errs, errStyle.Render(fmt.Sprintf("%s: %v", u, err)))
	}
	sort.Strings(errs)
	for _, e := range errs {
		b.WriteString(e + "\n")
	}
	if prev == nil {
		b.WriteString(faintStyle.Render("measuring… (rates need two scrapes, one second apart)") + "\n")
		return b.String()
	}
	rows := Rates(prev, cur)
	if len(rows) == 0 && len(cur.Errors) == 0 {
		b.WriteString("no sluice_* series at these addresses\n")
	}
	const format = "%-30s %10s %10s %10s %9s %7s  %s"
	pipeline := ""
	for _, r := range rows {
		if r.Pipeline != pipeline {
			pipeline = r.Pipeline
			b.WriteString("\n" + pipelineLine(pipeline, prev, cur) + "\n")
			b.WriteString(headStyle.Render(fmt.Sprintf(format, "COMPONENT", "IN/s", "OUT/s", "DROPPED/s", "DEAD/s", "BUSY", "RETRIES/s")) + "\n")
		}
		line := fmt.Sprintf(format, r.Component, num(r.In), num(r.Out), num(r.Dropped), num(r.Dead), strconv.FormatFloat(r.Busy, 'f', 2, 64), retries(r.Retries))
		if r.Bottleneck {
			line = hotStyle.Render(line) + " ◀ bottleneck"
		}
		b.WriteString(line + "\n")
	}
	if lag := lagLine(cur.Lag); lag != "" {
		b.WriteString("\n" + lag + "\n")
	}
	return b.String()
}

func pipelineLine(p string, prev, cur *Snapshot) string {
	parts := []string{headStyle.Render("pipeline " + p)}
	parts = append(parts, fmt.Sprintf("in flight %s batches", num(cur.InFlight[p])))
	if v, ok := quantile(0.99, prev.Latency[p], cur.Latency[p]); ok {
		parts = append(parts, "p99 end-to-end "+formatDuration(v))
	} else {
		parts = append(parts, "p99 end-to-end –")
	}
	return strings.Join(parts, " · ")
}

func lagLine(lag map[string]float64) string {
	if len(lag) == 0 {
		return ""
	}
	keys := make([]string, 0, len(lag))
	total := 0.0
	for k, v := range lag {
		keys = append(keys, k)
		total += v
	}
	sort.Slice(keys, func(i, j int) bool {
		if lag[keys[i]] != lag[keys[j]] {
			return lag[keys[i]] > lag[keys[j]]
		}
		return keys[i] < keys[j]
	})
	shown := keys[:min(len(keys), 8)]
	parts := make([]string, len(shown))
	for i, k := range shown {
		parts[i] = k + " " + num(lag[k])
	}
	more := ""
	if len(keys) > len(shown) {
		more = fmt.Sprintf(" · … %d more", len(keys)-len(shown))
	}
	return fmt.Sprintf("%s total %s · %s%s", headStyle.Render("lag"), num(total), strings.Join(parts, " · "), more)
}

func retries(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	classes := make([]string, 0, len(m))
	for c := range m {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	parts := make([]string, len(classes))
	for i, c := range classes {
		parts[i] = c + " " + num(m[c])
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 10_000:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
