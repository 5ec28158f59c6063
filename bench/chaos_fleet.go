package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// member is one `sluice run` process of the consumer group.
type member struct {
	slot, incarnation int
	cmd               *exec.Cmd
	metrics           string // host:port of its /metrics
	logFile           string // its stderr
	stdout            bytes.Buffer
	done              chan struct{} // closed when the process has been waited for
	waitErr           error
	byUs              bool // the bench stopped it (a fault or the end of the run)
	graceful          bool // it was asked to stop with SIGTERM

	// Guarded by the fleet's mu.
	read    int64             // last scraped events read by its source
	buckets map[float64]int64 // last scraped end-to-end latency buckets
}

// SlotStats is one consumer slot over every process that ran in it.
type SlotStats struct {
	Slot       int     `json:"slot"`
	Processes  int     `json:"processes"`
	PeakRSSMiB float64 `json:"peak_rss_mib"` // the largest VmHWM of its processes
	Read       int64   `json:"events_read"`  // by every process (at least: a killed one's last scrape)
	Crashes    int     `json:"exited_on_its_own"`
}

// fleet owns the consumer processes: it starts, signals and waits for them.
type fleet struct {
	binary, config, logDir string
	env                    []string
	source                 string // the source's metric label, e.g. source.kafka

	mu    sync.Mutex
	live  map[int]*member
	slots map[int]*SlotStats
	dead  []*member // exited, not yet accounted by the sampler
	next  int       // the next slot for an added member
}

func newFleet(binary, config, logDir, source string, env []string) *fleet {
	return &fleet{binary: binary, config: config, logDir: logDir, source: source, env: env,
		live: map[int]*member{}, slots: map[int]*SlotStats{}, next: 1}
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs a consumer in slot (0 = a new slot) and returns it.
func (f *fleet) start(slot int) (*member, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slot == 0 {
		slot = f.next
	}
	f.next = max(f.next, slot+1)
	st := f.slots[slot]
	if st == nil {
		st = &SlotStats{Slot: slot}
		f.slots[slot] = st
	}
	st.Processes++
	m := &member{slot: slot, incarnation: st.Processes, metrics: addr, done: make(chan struct{}), buckets: map[float64]int64{}}
	out := filepath.Join(f.logDir, fmt.Sprintf("%d-%d", slot, m.incarnation))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	m.logFile = filepath.Join(out, "stderr.log")
	logFile, err := os.Create(m.logFile)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(f.binary, "run", "-c", f.config, "--log-level", "warn")
	m.cmd.Env = append(append(os.Environ(), f.env...), "BENCH_METRICS="+addr, "BENCH_OUT="+out)
	m.cmd.Stdout, m.cmd.Stderr = &m.stdout, logFile
	// The consumers die with the bench rather than outlive it.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start consumer %d: %w", slot, err)
	}
	go func() {
		err := m.cmd.Wait()
		logFile.Close()
		f.mu.Lock()
		m.waitErr = err
		if f.live[m.slot] == m {
			delete(f.live, m.slot)
		}
		f.dead = append(f.dead, m)
		f.mu.Unlock()
		close(m.done)
	}()
	f.live[slot] = m
	return m, nil
}

// stop signals a member and waits for it to exit; a member that ignores
// SIGTERM for grace gets SIGKILL.
func (f *fleet) stop(m *member, sig syscall.Signal, grace time.Duration) error {
	f.mu.Lock()
	m.byUs, m.graceful = true, sig == syscall.SIGTERM
	f.mu.Unlock()
	f.sampleRSS(m)
	// What it read up to now: a killed process prints no summary.
	if read, _, err := scrape(context.Background(), m.metrics, f.source); err == nil {
		f.mu.Lock()
		m.read = max(m.read, read)
		f.mu.Unlock()
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		select {
		case <-m.done: // it exited on its own just before
			return nil
		case <-time.After(time.Second):
			return fmt.Errorf("signal consumer %d (pid %d): %w", m.slot, m.cmd.Process.Pid, err)
		}
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(grace):
		_ = m.cmd.Process.Kill()
		<-m.done
		return fmt.Errorf("consumer %d (pid %d) ignored %s for %s and was killed", m.slot, m.cmd.Process.Pid, sig, grace)
	}
}

// pick returns the live members, base slots (1..n) or added ones.
func (f *fleet) members(added bool, n int) []*member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*member
	for slot := 1; slot < f.next; slot++ {
		if m := f.live[slot]; m != nil && (slot > n) == added {
			out = append(out, m)
		}
	}
	return out
}

// stopAll stops every live member with SIGTERM.
func (f *fleet) stopAll(grace time.Duration) error {
	var errs []string
	for _, added := range []bool{true, false} {
		for _, m := range f.members(added, 1<<30) {
			if err := f.stop(m, syscall.SIGTERM, grace); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stopping the consumers: %s", strings.Join(errs, "; "))
	}
	return nil
}

// vmHWM reads a process's peak resident set size in KiB.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

func (f *fleet) sampleRSS(m *member) {
	if kb := vmHWM(m.cmd.Process.Pid); kb > 0 {
		f.mu.Lock()
		st := f.slots[m.slot]
		st.PeakRSSMiB = max(st.PeakRSSMiB, float64(kb)/1024)
		f.mu.Unlock()
	}
}

// settledLine is `sluice run`'s closing summary, printed on a clean stop.
var settledLine = regexp.MustCompile(`: (\d+) events settled in `)

// sample scrapes every live member (events read, latency buckets, RSS),
// accounts members that exited since the last call, and returns the
// latency bucket increments of this interval and the processes that
// exited without being asked to.
func (f *fleet) sample(ctx context.Context) (map[float64]int64, []*member) {
	delta := map[float64]int64{}
	for _, added := range []bool{false, true} {
		for _, m := range f.members(added, 1<<30) {
			f.sampleRSS(m)
			read, buckets, err := scrape(ctx, m.metrics, f.source)
			if err != nil {
				continue // not serving yet, or gone: the next sample sees it
			}
			f.mu.Lock()
			for le, n := range buckets {
				delta[le] += max(0, n-m.buckets[le])
			}
			m.read, m.buckets = max(m.read, read), buckets
			f.mu.Unlock()
		}
	}
	f.mu.Lock()
	dead := f.dead
	f.dead = nil
	var crashed []*member
	for _, m := range dead {
		read := m.read
		if sm := settledLine.FindSubmatch(m.stdout.Bytes()); sm != nil {
			read, _ = strconv.ParseInt(string(sm[1]), 10, 64)
		}
		st := f.slots[m.slot]
		st.Read += read
		if !m.byUs {
			st.Crashes++
			crashed = append(crashed, m)
		}
	}
	f.mu.Unlock()
	return delta, crashed
}

// stats is every slot's figures, by slot.
func (f *fleet) stats() []SlotStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SlotStats
	for slot := 1; slot < f.next; slot++ {
		if st := f.slots[slot]; st != nil {
			out = append(out, *st)
		}
	}
	return out
}

// scrape reads one consumer's /metrics: the events its source read and
// the cumulative end-to-end latency histogram buckets.
func scrape(ctx context.Context, addr, source string) (int64, map[float64]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("metrics of %s: %s", addr, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return readFamilies(fams, source)
}

// readFamilies picks the source's events out and the end-to-end latency
// buckets from parsed metric families.
func readFamilies(fams map[string]*dto.MetricFamily, source string) (int64, map[float64]int64, error) {
	var read int64
	if mf := fams["sluice_events_out_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			if label(m, "component") == source {
				read = int64(m.GetCounter().GetValue())
			}
		}
	}
	buckets := map[float64]int64{}
	if mf := fams["sluice_end_to_end_latency_seconds"]; mf != nil {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					buckets[b.GetUpperBound()] += int64(b.GetCumulativeCount())
				}
			}
			buckets[math.Inf(1)] += int64(h.GetSampleCount())
		}
	}
	return read, buckets, nil
}

// bucketQuantile is the q quantile (0..1) of cumulative bucket counts
// (+Inf holding the total), as the upper bound of the bucket it falls in,
// in milliseconds; past the last finite bound, that bound.
func bucketQuantile(buckets map[float64]int64, q float64) float64 {
	total := buckets[math.Inf(1)]
	if total == 0 {
		return 0
	}
	var bounds []float64
	for le := range buckets {
		if !math.IsInf(le, 1) {
			bounds = append(bounds, le)
		}
	}
	slices.Sort(bounds)
	want := q * float64(total)
	for _, le := range bounds {
		if float64(buckets[le]) >= want {
			return le * 1000
		}
	}
	if len(bounds) == 0 {
		return 0
	}
	return bounds[len(bounds)-1] * 1000
}

// lastLog is the end of a member's stderr, for an error message.
func (m *member) lastLog() string {
	data, err := os.ReadFile(m.logFile)
	if err != nil {
		return ""
	}
	return lastLines(string(data), 5)
}
