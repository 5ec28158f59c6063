package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// sleeper starts a process of our own to stand in for a server.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func processState(pid int) byte {
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(st)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2]
	}
	return 0
}

// TestPlanFaults: server faults are planned only where a live pid (and,
// for store-kill, a restart hook) is known; the others are reported as
// skipped with the reason, and a plan with nothing left is refused.
func TestPlanFaults(t *testing.T) {
	dir := t.TempDir()
	mongo := sleeper(t)
	if err := os.WriteFile(filepath.Join(dir, "mongo.pid"), []byte(strconv.Itoa(mongo.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipeline.Load("c.yaml", []byte(fmt.Sprintf(chaosConsumer, "mongodb://127.0.0.1:1/")), chaosRegistry(),
		func(string) (string, bool) { return "127.0.0.1:9092", true })
	if err != nil {
		t.Fatal(err)
	}
	all := []string{FaultKill9, FaultStoreStall, FaultStoreKill, FaultBrokerStall}
	for _, tc := range []struct {
		name     string
		pidDir   string
		restart  map[string]string
		brokers  int // in the Kafka cluster
		faults   []string
		classes  []string
		skipped  []string // substrings, one per skipped class
		rejected bool
	}{
		{"no pid dir", "", nil, 1, all, []string{FaultKill9}, []string{"store-stall: cannot inject here (mongo: no pid directory", "store-kill:", "broker-stall:"}, false},
		{"pids, no hook", dir, nil, 1, all, []string{FaultKill9, FaultStoreStall}, []string{"store-kill: cannot inject here (mongo: no restart hook", "broker-stall: cannot inject here (kafka: open"}, false},
		{"pids and hook", dir, map[string]string{"mongo": "true"}, 1, all, []string{FaultKill9, FaultStoreStall, FaultStoreKill}, []string{"broker-stall:"}, false},
		{"only server faults, none possible", "", nil, 1, []string{FaultStoreStall, FaultBrokerStall}, nil, nil, true},
		{"broker-kill on one broker", dir, nil, 1, []string{FaultKill9, FaultBrokerKill}, []string{FaultKill9},
			[]string{"broker-kill: cannot inject here (the Kafka cluster has 1 broker(s); killing one needs at least 3"}, false},
		{"broker-kill on three brokers", dir, nil, 3, []string{FaultKill9, FaultBrokerKill}, []string{FaultKill9, FaultBrokerKill}, nil, false},
		{"broker-kill on three brokers, one without a pid", dir, nil, 3, []string{FaultKill9, FaultBrokerKill}, []string{FaultKill9},
			[]string{"broker-kill: cannot inject here (kafka-3: "}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidDir := tc.pidDir
			if strings.HasPrefix(tc.name, "broker-kill on three") {
				pidDir = brokerPids(t, dir, !strings.Contains(tc.name, "without"))
			}
			p, err := planFaults(ChaosOptions{Faults: tc.faults, PIDDir: pidDir, RestartCmd: tc.restart}, cfg, tc.brokers)
			if tc.rejected {
				if err == nil || !strings.Contains(err.Error(), "none of the requested faults can be injected") {
					t.Fatalf("planFaults = %+v, %v; want it refused", p, err)
				}
				return
			}
			if err != nil || !slices.Equal(p.classes, tc.classes) || len(p.skipped) != len(tc.skipped) {
				t.Fatalf("planFaults = %+v, %v; want classes %v, %d skipped", p, err, tc.classes, len(tc.skipped))
			}
			if slices.Contains(tc.classes, FaultBrokerKill) && len(p.killable) != 3 {
				t.Errorf("broker-kill targets %+v, want the 3 brokers", p.killable)
			}
			for i, want := range tc.skipped {
				if !strings.Contains(p.skipped[i], want) || !strings.HasSuffix(p.skipped[i], "; skipped") {
					t.Errorf("skipped[%d] = %q, want %q…; skipped", i, p.skipped[i], want)
				}
			}
		})
	}
}

// brokerPids writes kafka-1..3.pid of live stand-ins into a new directory
// (kafka-3.pid missing unless all).
func brokerPids(t *testing.T, dir string, all bool) string {
	t.Helper()
	d, err := os.MkdirTemp(dir, "brokers")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("kafka-%d.pid", i)
		pid := strconv.Itoa(sleeper(t).Process.Pid)
		if i == 3 && !all {
			pid = "" // names no process
		}
		if err := os.WriteFile(filepath.Join(d, name), []byte(pid), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestStallServer stops a stand-in server (a process of the test's own)
// for the stall and always continues it, also when the run is cancelled.
func TestStallServer(t *testing.T) {
	dir := t.TempDir()
	proc := sleeper(t)
	pid := proc.Process.Pid
	pidFile := filepath.Join(dir, "mongo.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := server{name: "mongo", pidFile: pidFile}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := stallServers(ctx, []server{s}, time.Hour); done <- err }()
	testwait.For(t, "the stand-in server stopped (state T)", func() bool { return processState(pid) == 'T' },
		func() string { return fmt.Sprintf("state %c", processState(pid)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the stand-in server continued", func() bool { return processState(pid) == 'S' || processState(pid) == 'R' },
		func() string { return fmt.Sprintf("state %c", processState(pid)) })
}

// TestKillServerRunsTheRestartHook kills a stand-in server and checks the
// hook started a new one whose pid it wrote.
func TestKillServerRunsTheRestartHook(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "mongo.pid")
	old := exec.Command("sleep", "600")
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	go old.Wait() //nolint:errcheck // reaped so the kill is seen
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(old.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := fmt.Sprintf("sleep 600 >/dev/null 2>&1 & echo $! > %s", pidFile)
	target, err := killServer(context.Background(), server{name: "mongo", pidFile: pidFile, restart: hook})
	if err != nil {
		t.Fatalf("killServer: %v", err)
	}
	data, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if pid == old.Process.Pid || pid <= 1 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("after the hook the pid file holds %q", data)
	}
	if !strings.Contains(target, strconv.Itoa(old.Process.Pid)) {
		t.Errorf("target %q does not name the killed pid", target)
	}
	if _, err := killServer(context.Background(), server{name: "mongo", pidFile: pidFile, restart: "exit 3"}); err == nil || !strings.Contains(err.Error(), "restart hook") {
		t.Errorf("a failing hook: %v", err)
	}
}

// TestProcImageRestartsAServerAsItWas: a server without a restart hook is
// started again with the command line, environment and working directory
// it had, and its pid file names the new process.
func TestProcImageRestartsAServerAsItWas(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "server.log")
	logFile, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("sh", "-c", `echo "up in $PWD with $CHAOS_MARK"; exec sleep 600`)
	cmd.Dir, cmd.Env, cmd.Stdout = dir, append(os.Environ(), "CHAOS_MARK=m21"), logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Once it has exec'd sleep, its command line is sleep's.
	testwait.For(t, "the stand-in to exec sleep", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		return strings.HasPrefix(string(b), "sleep\x00")
	}, func() string { return "not yet" })
	img, err := readProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.argv, []string{"sleep", "600"}) || img.dir != dir || img.log != log || !slices.Contains(img.env, "CHAOS_MARK=m21") {
		t.Fatalf("image %+v", img)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	pidFile := filepath.Join(dir, "server.pid")
	pid, err := img.start(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	s := server{name: "server", pidFile: pidFile}
	if got, err := s.pid(); err != nil || got != pid || got == cmd.Process.Pid {
		t.Fatalf("pid file names %d (%v), want the new process %d", got, err, pid)
	}
	again, err := readProc(pid)
	if err != nil || !slices.Equal(again.argv, img.argv) || again.dir != dir {
		t.Fatalf("restarted as %+v (%v)", again, err)
	}
}
