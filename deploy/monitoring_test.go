package deploy

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

// registeredMetric is the declaration `prometheus.<Kind>Opts{Name: "sluice_…"`
// in the repository's Go code.
var registeredMetric = regexp.MustCompile(`prometheus\.(\w+)Opts\{Name:\s*"(sluice_\w+)"`)

// registeredMetrics returns every series name sluice can expose: the sluice_
// metrics declared in the repository's non-test Go code (found by reading it,
// so a new metric is known as soon as it is declared), the _bucket, _sum and
// _count series of its histograms and summaries, and the go_ and process_
// series of the collectors cmd/sluice registers, and Prometheus's own up.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") && p != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range registeredMetric.FindAllStringSubmatch(string(b), -1) {
			names[m[2]] = true
			if m[1] == "Histogram" || m[1] == "Summary" {
				names[m[2]+"_bucket"], names[m[2]+"_sum"], names[m[2]+"_count"] = true, true, true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d sluice_ metrics in the Go code: has the declaration style changed? (looking for %s)", len(names), registeredMetric)
	}
	// As in cmd/sluice/main.go.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	// Written by Prometheus itself for every scrape target.
	names["up"] = true
	return names
}

// metricNames parses a PromQL expression and returns the metric names its
// selectors read.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names, nil
}

func checkReferences(t *testing.T, where string, names []string, registered map[string]bool, seen map[string]bool) {
	t.Helper()
	if len(names) == 0 {
		t.Errorf("%s: reads no metric", where)
	}
	for _, n := range names {
		seen[n] = true
		if !registered[n] {
			t.Errorf("%s: %s is not a metric sluice registers", where, n)
		}
	}
}

func TestAlertRules(t *testing.T) {
	registered := registeredMetrics(t)
	file := filepath.Join("prometheus", "alerts.yaml")
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	seen := map[string]bool{}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			names, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("%s: %s: %v", file, r.Alert, err)
				continue
			}
			checkReferences(t, file+": "+r.Alert+r.Record, names, registered, seen)
			if r.Alert != "" {
				alerts++
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
					t.Errorf("%s: %s: want a severity label and a summary annotation", file, r.Alert)
				}
			}
		}
	}
	// What issue 10 asks the alerts to cover.
	for _, want := range []string{"sluice_kafka_consumer_lag", "sluice_events_dead_lettered_total", "sluice_events_out_total", "sluice_retries_total"} {
		if !seen[want] {
			t.Errorf("%s: no alert reads %s", file, want)
		}
	}
	t.Logf("%d alerts over %d metrics", alerts, len(seen))
}

// grafanaVars stand in for the dashboard's variables so that its queries
// parse as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

func TestGrafanaDashboard(t *testing.T) {
	registered := registeredMetrics(t)
	file := filepath.Join("grafana", "sluice-dashboard.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string           `json:"uid"`
		Title      string           `json:"title"`
		Panels     []map[string]any `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: want a uid, a title and panels", file)
	}

	seen := map[string]bool{}
	ids := map[float64]bool{}
	exprs := 0
	for _, p := range dash.Panels {
		title, _ := p["title"].(string)
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("%s: panel %q: id %v is used twice", file, title, id)
		}
		ids[id] = true
		if p["type"] == "row" {
			continue
		}
		targets, _ := p["targets"].([]any)
		if len(targets) == 0 {
			t.Errorf("%s: panel %q has no queries", file, title)
		}
		for _, tg := range targets {
			expr, _ := tg.(map[string]any)["expr"].(string)
			names, err := metricNames(grafanaVars.Replace(expr))
			if err != nil {
				t.Errorf("%s: panel %q: %q: %v", file, title, expr, err)
				continue
			}
			exprs++
			checkReferences(t, file+": panel "+title, names, registered, seen)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		query, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(query)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", file, v.Name, query)
			continue
		}
		names, err := metricNames(m[1])
		if err != nil {
			t.Errorf("%s: variable %s: %v", file, v.Name, err)
			continue
		}
		checkReferences(t, file+": variable "+v.Name, names, registered, seen)
	}
	// What issue 10 asks the dashboard to show: throughput, lag, end-to-end
	// p99, dead letters, retries.
	for _, want := range []string{"sluice_events_out_total", "sluice_kafka_consumer_lag", "sluice_end_to_end_latency_seconds_bucket", "sluice_events_dead_lettered_total", "sluice_retries_total"} {
		if !seen[want] {
			t.Errorf("%s: no panel reads %s", file, want)
		}
	}
	var all []string
	for n := range seen {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("%d queries over %s", exprs, strings.Join(all, ", "))
}
