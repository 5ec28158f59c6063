package bench

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
)

func numCPU() int { return runtime.NumCPU() }

// WriteTable prints the results table and, last, the audit line.
func WriteTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "profile %s on %s\n", r.Profile, r.Machine)
	row := func(k, v string) { fmt.Fprintf(w, "  %-34s %s\n", k, v) }
	row("duration", fmt.Sprintf("%.1fs", r.Seconds))
	row("events sent / settled", fmt.Sprintf("%d / %d", r.Sent, r.Settled))
	row("throughput mean / peak", fmt.Sprintf("%.0f / %.0f events/s", r.MeanRate, r.PeakRate))
	row("latency event time → acked", fmt.Sprintf("p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms", r.LatencyMillis["p50"], r.LatencyMillis["p90"], r.LatencyMillis["p99"], r.LatencyMillis["max"]))
	row("max consumer lag", fmt.Sprintf("%d events", r.MaxLag))
	if r.LagRecovered != 0 {
		row("lag recovered after the burst", fmt.Sprintf("%.0fs", r.LagRecovered))
	}
	cpuNote := ""
	if r.ProducerInProc {
		cpuNote = " (producer in the same process: includes it)"
	}
	row("consumer CPU", fmt.Sprintf("%.1f s, %.1f CPU-s per million events%s", r.CPUSeconds, r.CPUPerMillion, cpuNote))
	row("consumer peak RSS", fmt.Sprintf("%.0f MiB", r.PeakRSSMiB))
	names := make([]string, 0, len(r.StageSeconds))
	for n := range r.StageSeconds {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return r.StageSeconds[names[i]] > r.StageSeconds[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1fs", n, r.StageSeconds[n]))
	}
	row("time per stage (bottleneck first)", strings.Join(parts, ", "))
	fmt.Fprintln(w, r.Cleanup.Line())
	fmt.Fprintln(w, r.Audit.Line())
}

// WriteJSON writes every figure.
func WriteJSON(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// WriteHTML writes a self-contained page charting throughput, lag and p99
// latency per second as inline SVG.
func WriteHTML(path string, r *Result) error {
	type mark struct {
		X     float64
		Label string
	}
	type chart struct {
		Title, Unit, Points string
		Max                 float64
		Marks               []mark
	}
	// Faults (the chaos profile) are marked at their time on every chart.
	var marks []mark
	if n := len(r.Series); n > 1 {
		t0, t1 := r.Series[0].T, r.Series[n-1].T
		for _, f := range r.Faults {
			if t1 > t0 {
				x := 40 + min(1, max(0, (f.At-t0)/(t1-t0)))*700
				marks = append(marks, mark{X: x, Label: fmt.Sprintf("%.0fs %s %s", f.At, f.Class, f.Target)})
			}
		}
	}
	series := func(title, unit string, f func(Second) float64) chart {
		c := chart{Title: title, Unit: unit, Marks: marks}
		for _, s := range r.Series {
			c.Max = max(c.Max, f(s))
		}
		if c.Max == 0 {
			c.Max = 1
		}
		var pts []string
		n := max(1, len(r.Series)-1)
		for i, s := range r.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", 40+float64(i)/float64(n)*700, 190-f(s)/c.Max*170))
		}
		c.Points = strings.Join(pts, " ")
		return c
	}
	charts := []chart{
		series("throughput", "events/s", func(s Second) float64 { return s.Rate }),
		series("consumer lag", "events", func(s Second) float64 { return float64(s.Lag) }),
		series("end-to-end p99", "ms", func(s Second) float64 { return s.P99Millis }),
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return page.Execute(f, map[string]any{"R": r, "Charts": charts, "Audit": r.Audit.Line()})
}

var page = template.Must(template.New("page").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>sluice bench: {{.R.Profile}}</title>
<style>body{font-family:sans-serif;margin:2em}svg{background:#fafafa;border:1px solid #ddd;margin:0.5em 0}polyline{fill:none;stroke:#2563eb;stroke-width:1.5}line.fault{stroke:#dc2626;stroke-dasharray:4 3}text{font-size:12px}</style></head><body>
<h1>sluice bench: {{.R.Profile}}</h1><p>{{.R.Machine}}, {{.R.Started.Format "2006-01-02 15:04 MST"}}, {{printf "%.0f" .R.Seconds}} s, mean {{printf "%.0f" .R.MeanRate}} events/s,
p99 {{index .R.LatencyMillis "p99"}} ms, {{printf "%.1f" .R.CPUPerMillion}} CPU-s per million events, peak RSS {{printf "%.0f" .R.PeakRSSMiB}} MiB</p>
{{range .Charts}}<h3>{{.Title}} (max {{printf "%.0f" .Max}} {{.Unit}})</h3><svg width="760" height="210" viewBox="0 0 760 210">
<line x1="40" y1="190" x2="740" y2="190" stroke="#999"/><line x1="40" y1="20" x2="40" y2="190" stroke="#999"/>
<text x="2" y="24">{{printf "%.0f" .Max}}</text><text x="2" y="190">0</text>{{range .Marks}}<line class="fault" x1="{{printf "%.1f" .X}}" y1="20" x2="{{printf "%.1f" .X}}" y2="190"><title>{{.Label}}</title></line>{{end}}<polyline points="{{.Points}}"/></svg>{{end}}
{{if .R.Faults}}<h3>faults</h3><ul>{{range .R.Faults}}<li>{{printf "%.1f" .At}}s {{.Class}}: {{.Target}}{{if .Err}} ({{.Err}}){{end}}</li>{{end}}</ul>{{end}}
<p><b>{{.Audit}}</b></p></body></html>
`))
