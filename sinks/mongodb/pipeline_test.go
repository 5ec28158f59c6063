package mongodb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
)

// runPipeline builds a YAML pipeline with a memory source, the mongodb sink
// and a memory dead-letter sink, and runs it through the real runner.
func runPipeline(t *testing.T, src *pipelinetest.Source, dead *pipelinetest.Sink, sinkYAML string, reg *prometheus.Registry) error {
	t.Helper()
	r := pipeline.NewRegistry()
	mongosink.Register(r)
	pipelinetest.Register(r, src, dead)
	doc := `name: mongo-test
source: {mem: {}}
sinks:
  - mongodb: ` + sinkYAML + `
dead_letter: {mem: {index: 0}}
batch: {max_events: 20, max_wait: 5ms}
retry: {initial_interval: 50ms, max_interval: 500ms}
delivery: {lanes: 4, max_in_flight: 8, shutdown_timeout: 30s}
`
	return pipelinetest.RunToEnd(t, "mongo-test.yaml", doc, r, pipeline.WithMetricsRegisterer(reg))
}

func TestOnlyTheInvalidDocumentIsDeadLettered(t *testing.T) {
	uri := testenv.MongoURI(t)
	c := client(t, uri)
	db := uniqueDB(t)
	var batch []*pipeline.Event
	for i := range 12 {
		batch = append(batch, crmEvent(i, i, "contact.updated", "a@b.io"))
	}
	batch[5].Body = []byte(`{"id":"evt_5","data":{"ok":1},"$set":"not a field name"}`)
	batch[5].Payload = batch[5].Body
	src := pipelinetest.NewSource(batch)
	dead := &pipelinetest.Sink{}
	if err := runPipeline(t, src, dead, fmt.Sprintf(`{uri: %q, database: %s, collection: events, max_batch: 50}`, uri, db), prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	if got := len(docs(t, c, db, "events")); got != 11 {
		t.Errorf("%d documents stored, want 11", got)
	}
	ws := dead.Writes()
	if len(ws) != 1 || ws[0].ID != "evt_5" {
		t.Fatalf("dead letters %+v, want only evt_5", ws)
	}
	var dl pipeline.DeadLetter
	if err := json.Unmarshal([]byte(ws[0].Body), &dl); err != nil {
		t.Fatal(err)
	}
	// The server's own message, and the original payload to replay.
	if !strings.Contains(dl.Reason, `invalid key: "$set"`) || !strings.Contains(string(dl.Payload), `"$set"`) {
		t.Errorf("dead letter reason %q payload %s", dl.Reason, dl.Payload)
	}
	for i, a := range src.Acks() {
		if !a.Acked || a.Err != nil {
			t.Errorf("batch %d ack %+v", i, a)
		}
	}
}

// ferret is a private FerretDB process this test may stop and restart.
type ferret struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startFerret(t *testing.T) *ferret {
	t.Helper()
	home, _ := os.UserHomeDir()
	bins, _ := filepath.Glob(filepath.Join(home, ".cache", "sluice-testenv", "bin", "ferretdb-v*"))
	var bin string
	for _, b := range bins {
		if fi, err := os.Stat(b); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			bin = b
			break
		}
	}
	if bin == "" {
		if os.Getenv(testenv.EnvRequired) == "1" {
			t.Fatal("no cached FerretDB binary in ~/.cache/sluice-testenv/bin; run `make testenv` once")
		}
		t.Skip("no cached FerretDB binary in ~/.cache/sluice-testenv/bin; run `make testenv` once")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f := &ferret{t: t, bin: bin, dir: t.TempDir(), addr: addr}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *ferret) start() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := exec.Command(f.bin, "--handler=sqlite", "--sqlite-url=file:"+f.dir+"/", "--listen-addr="+f.addr,
		"--debug-addr=-", "--telemetry=disable", "--state-dir="+f.dir, "--log-level=error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.cmd = cmd
	var err error
	testwait.ForEvery(f.t, 50*time.Millisecond, "FerretDB on "+f.addr+" to listen", func() bool {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", f.addr, 200*time.Millisecond); err != nil {
			return false
		}
		c.Close()
		return true
	}, func() string { return fmt.Sprintf("dial: %v", err) })
}

// stop kills the process, as a crash or an abrupt failover would.
func (f *ferret) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd != nil {
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait()
		f.cmd = nil
	}
}

func TestServerRestartMidRunLosesNothing(t *testing.T) {
	f := startFerret(t)
	uri := "mongodb://" + f.addr + "/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000"
	const batches, perBatch, contacts = 30, 10, 20
	// Upserts with $inc: a write applied before the crash and retried after
	// it would count twice if the replay guard failed.
	next := func(i int) []*pipeline.Event {
		if i >= batches {
			return nil
		}
		time.Sleep(40 * time.Millisecond)
		var b []*pipeline.Event
		for j := range perBatch {
			n := i*perBatch + j
			b = append(b, crmEvent(n, n%contacts, "contact.updated", fmt.Sprintf("c%d@x.io", n)))
		}
		return b
	}
	src := pipelinetest.NewFuncSource(next)
	dead := &pipelinetest.Sink{}
	reg := prometheus.NewRegistry()
	db := uniqueDB(t)
	done := make(chan error, 1)
	go func() {
		done <- runPipeline(t, src, dead, fmt.Sprintf(`{uri: %q, database: %s, collection: contacts, mode: upsert, id: data.Id,
      max_batch: 20, write_timeout: 2s, update: {set: {email: data.Email}, inc: {events: 1}}}`, uri, db), reg)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if !src.WaitAcked(ctx, 8) {
		t.Fatal("the first batches were not acked")
	}
	f.stop()
	downAt := src.EventsRead()
	// Down until a write has failed on it, however long that takes.
	testwait.For(t, "a write to fail while the server is down", func() bool {
		return pipelinetest.MetricSum(t, reg, "sluice_mongodb_write_errors_total", map[string]string{"class": "retryable"}) > 0
	}, func() string { return fmt.Sprintf("%d events read", src.EventsRead()) })
	f.start()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if src.EventsRead() <= downAt {
		t.Errorf("the source did not continue after the restart (%d events read at stop, %d at the end)", downAt, src.EventsRead())
	}
	if retries := pipelinetest.MetricSum(t, reg, "sluice_mongodb_write_errors_total", map[string]string{"class": "retryable"}); retries == 0 {
		t.Error("no write failed while the server was down: the test did not test anything")
	}
	if n := len(dead.Writes()); n != 0 {
		t.Errorf("%d events dead-lettered, want none", n)
	}
	for i, a := range src.Acks() {
		if !a.Acked || a.Err != nil || a.Calls != 1 {
			t.Errorf("batch %d ack %+v", i, a)
		}
	}
	c := client(t, "mongodb://"+f.addr+"/")
	got := docs(t, c, db, "contacts")
	if len(got) != contacts {
		t.Fatalf("%d contacts, want %d", len(got), contacts)
	}
	total := int64(0)
	for id := range got {
		r := doc(t, c, db, "contacts", id)
		n, _ := r.Lookup("events").AsInt64OK()
		total += n
		// The latest email of the contact is the one stored.
		var last int
		fmt.Sscanf(id, "003%04d", &last)
		last += (batches*perBatch/contacts - 1) * contacts
		if e := str(r.Lookup("email")); e != fmt.Sprintf("c%d@x.io", last) {
			t.Errorf("%s: email %s, want c%d@x.io", id, e, last)
		}
		applied, _ := r.Lookup("_applied").Array().Values()
		if len(applied) != int(n) {
			t.Errorf("%s: %d applied ids, events %d", id, len(applied), n)
		}
	}
	if total != batches*perBatch {
		t.Errorf("events counted %d times in all, want %d: a retried write was applied twice or lost", total, batches*perBatch)
	}
}
