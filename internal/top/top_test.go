package top

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// recorded is two scrapes of a real consumer (Kafka → decode → enrich →
// filter → file, with a dead letter), one second apart, as replicas
// replicas times.
func recorded(t *testing.T, replicas int) (prev, cur *Snapshot) {
	t.Helper()
	t0 := time.Date(2026, 12, 3, 16, 30, 0, 0, time.UTC)
	prev, cur = newSnapshot(t0), newSnapshot(t0.Add(time.Second))
	for _, s := range []struct {
		file string
		snap *Snapshot
	}{{"testdata/metrics-1.txt", prev}, {"testdata/metrics-2.txt", cur}} {
		for range replicas {
			f, err := os.Open(s.file)
			if err != nil {
				t.Fatal(err)
			}
			fams, err := Parse(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			s.snap.Add(fams)
		}
	}
	return prev, cur
}

func TestRatesFromRecordedMetrics(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		prev, cur := recorded(t, replicas)
		rows := Rates(prev, cur)
		byName := map[string]Row{}
		var order []string
		for _, r := range rows {
			byName[r.Component] = r
			order = append(order, r.Component)
		}
		wantOrder := "source.kafka transforms[0].decode transforms[1].enrich transforms[2].filter sinks[0].file dead_letter.file"
		if strings.Join(order, " ") != wantOrder {
			t.Fatalf("order %v", order)
		}
		n := float64(replicas)
		for _, tc := range []struct {
			component           string
			in, out, drop, dead float64
		}{
			{"source.kafka", 0, 2897, 0, 0},
			{"transforms[0].decode", 2886, 2861, 0, 25},
			{"transforms[2].filter", 2861, 2635, 226, 0},
			{"sinks[0].file", 2635, 2635, 0, 0},
			{"dead_letter.file", 25, 25, 0, 0},
		} {
			r := byName[tc.component]
			if r.In != n*tc.in || r.Out != n*tc.out || r.Dropped != n*tc.drop || r.Dead != n*tc.dead {
				t.Errorf("%d replicas, %s: in %v out %v dropped %v dead %v; want %v %v %v %v (×%d)", replicas, tc.component, r.In, r.Out, r.Dropped, r.Dead, tc.in, tc.out, tc.drop, tc.dead, replicas)
			}
		}
		// The dead-letter file (fsync per batch) is the busiest non-source
		// component: 0.064 s/s against decode's 0.013.
		for _, r := range rows {
			if r.Bottleneck != (r.Component == "dead_letter.file") {
				t.Errorf("%s bottleneck = %v (busy %.3f)", r.Component, r.Bottleneck, r.Busy)
			}
		}
		if got := byName["dead_letter.file"].Busy; math.Abs(got-n*0.064346) > 0.0001 {
			t.Errorf("dead_letter busy %.5f", got)
		}
		// Lag is per partition, the largest replica's, not their sum.
		if len(cur.Lag) != 10 || cur.Lag["tooling-top-1796315179/2"] != 42 {
			t.Errorf("lag %v", cur.Lag)
		}
	}
}

func TestQuantileFromRecordedHistogram(t *testing.T) {
	prev, cur := recorded(t, 1)
	// 2886 events between the scrapes; rank 2857.1 falls in (0.64, 1.28]
	// where the count goes 2850 → 2873.
	got, ok := quantile(0.99, prev.Latency["crm-consumer"], cur.Latency["crm-consumer"])
	if want := 0.64 + 0.64*(0.99*2886-2850)/23; !ok || math.Abs(got-want) > 1e-9 {
		t.Fatalf("p99 = %v %v, want %v", got, ok, want)
	}
	if _, ok := quantile(0.99, cur.Latency["crm-consumer"], cur.Latency["crm-consumer"]); ok {
		t.Fatal("a quantile of no events")
	}
}

func TestRender(t *testing.T) {
	prev, cur := recorded(t, 1)
	out := Render([]string{"http://a:9102/metrics"}, prev, cur)
	for _, want := range []string{
		"1/1 replicas",
		"pipeline crm-consumer",
		"in flight 0 batches",
		"p99 end-to-end 839ms",
		"transforms[2].filter",
		"dead_letter.file",
		"◀ bottleneck",
		"lag total 328 · tooling-top-1796315179/2 42",
		"… 2 more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		if strings.Contains(l, "◀ bottleneck") && !strings.Contains(l, "dead_letter.file") {
			t.Errorf("bottleneck on the wrong line: %s", l)
		}
		if strings.Contains(l, "transforms[2].filter") && !strings.Contains(l, "2861") {
			t.Errorf("filter line without its in/s: %s", l)
		}
	}
	if first := Render([]string{"u"}, nil, cur); !strings.Contains(first, "measuring") {
		t.Errorf("first frame:\n%s", first)
	}
}

func TestRetriesAndDownReplicas(t *testing.T) {
	text := func(retries int) string {
		return `# TYPE sluice_retries_total counter
sluice_retries_total{pipeline="p",component="sinks[0].mongodb",class="timeout"} ` + itoa(retries) + `
sluice_retries_total{pipeline="p",component="sinks[0].mongodb",class="unavailable"} 7
# TYPE sluice_stage_seconds_total counter
sluice_stage_seconds_total{pipeline="p",component="sinks[0].mongodb"} ` + itoa(retries) + `
`
	}
	t0 := time.Unix(0, 0)
	prev, cur := newSnapshot(t0), newSnapshot(t0.Add(2*time.Second))
	for s, body := range map[*Snapshot]string{prev: text(10), cur: text(20)} {
		fams, err := Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		s.Add(fams)
	}
	cur.Errors["http://b:9102/metrics"] = os.ErrDeadlineExceeded
	out := Render([]string{"http://a:9102/metrics", "http://b:9102/metrics"}, prev, cur)
	for _, want := range []string{"1/2 replicas", "http://b:9102/metrics: i/o timeout", "timeout 5.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unavailable") {
		t.Errorf("a class that did not move is shown:\n%s", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestModel(t *testing.T) {
	prev, cur := recorded(t, 1)
	snaps := []*Snapshot{prev, cur}
	calls := 0
	m := &Model{URLs: []string{"http://a:9102/metrics"}, Interval: time.Second, ctx: context.Background(),
		Scrape: func(context.Context, []string) *Snapshot { s := snaps[calls%2]; calls++; return s }}
	if !strings.Contains(m.View(), "scraping http://a:9102/metrics") {
		t.Fatalf("view before the first scrape: %q", m.View())
	}
	msg := m.Init()()
	if _, cmd := m.Update(msg); cmd == nil {
		t.Fatal("no tick after a scrape")
	}
	if !strings.Contains(m.View(), "measuring") {
		t.Fatalf("view after one scrape:\n%s", m.View())
	}
	_, cmd := m.Update(tickMsg{})
	if cmd == nil {
		t.Fatal("a tick did not scrape")
	}
	m.Update(cmd())
	if !strings.Contains(m.View(), "◀ bottleneck") || calls != 2 {
		t.Fatalf("view after two scrapes (%d calls):\n%s", calls, m.View())
	}
	_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd == nil {
		t.Fatal("q did nothing")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q does not quit")
	}
	if m.View() != "" {
		t.Fatal("a view after quitting")
	}
}
