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
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// server is a process the chaos profile may signal: a store behind one of
// the consumer's sinks, or a Kafka broker. Its pid is read from
// <PIDDir>/<name>.pid at each injection, so a restart hook that writes a
// new pid file (the local stack's up.sh does) is followed.
type server struct {
	name    string // the pid file's name: mongo, elasticsearch, redis, kafka…
	pidFile string
	restart string // shell command that brings it back after a kill; "" = none
}

// serverNames are the pid file names a sink kind's server may have, in the
// order they are tried: the local stack's names first.
func serverNames(sink string) []string {
	switch sink {
	case "mongodb":
		return []string{"mongo", "mongodb", "ferretdb"}
	case "elasticsearch":
		return []string{"elasticsearch", "opensearch", "zincsearch"}
	}
	return []string{sink}
}

// storeServer picks, of a sink kind's possible names, the first with a pid
// file in dir; with none, the first name (whose pid file is then missing).
func storeServer(dir, sink string) string {
	names := serverNames(sink)
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n+".pid")); err == nil {
			return n
		}
	}
	return names[0]
}

// pid reads the server's pid file and checks the process is alive.
func (s server) pid() (int, error) {
	data, err := os.ReadFile(s.pidFile)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: %s does not hold a pid", s.name, s.pidFile)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, fmt.Errorf("%s: pid %d from %s is not a process we may signal: %w", s.name, pid, s.pidFile, err)
	}
	return pid, nil
}

// plan is what the run can inject: the classes kept, in the order given,
// the servers per server class, and why each dropped class was skipped.
type plan struct {
	classes  []string
	stall    []server // store-stall targets
	kill     []server // store-kill targets (each has a restart hook)
	brokers  []server // broker-stall targets (Kafka brokers, or kinesalite)
	killable []server // broker-kill targets: Kafka brokers, each restarted after the kill
	skipped  []string // "store-kill: cannot inject here: …; skipped"
}

// planFaults decides, before the run, which requested classes can be
// injected against this environment. Consumer faults always can; server
// faults need live pids in PIDDir (and store-kill a restart hook);
// broker-kill needs a cluster of at least three brokers.
func planFaults(o ChaosOptions, cfg *pipeline.Config, clusterBrokers int) (plan, error) {
	var p plan
	var storeNames []string
	for _, s := range cfg.Sinks {
		if n := storeServer(o.PIDDir, s.Spec.Name); !slices.Contains(storeNames, n) {
			storeNames = append(storeNames, n)
		}
	}
	live := func(names []string, needRestart bool) ([]server, []string) {
		var ok []server
		var why []string
		for _, n := range names {
			if o.PIDDir == "" {
				why = append(why, n+": no pid directory (--pid-dir)")
				continue
			}
			s := server{name: n, pidFile: filepath.Join(o.PIDDir, n+".pid"), restart: o.RestartCmd[n]}
			if _, err := s.pid(); err != nil {
				why = append(why, err.Error())
				continue
			}
			if needRestart && s.restart == "" {
				why = append(why, n+": no restart hook (--restart-cmd "+n+"=COMMAND)")
				continue
			}
			ok = append(ok, s)
		}
		return ok, why
	}
	for _, class := range o.Faults {
		var got []server
		var why []string
		switch class {
		case FaultStoreStall, FaultStoreKill:
			got, why = live(storeNames, class == FaultStoreKill)
			if class == FaultStoreKill {
				p.kill = got
			} else {
				p.stall = got
			}
		case FaultBrokerStall:
			got, why = live(brokerNames(o), false)
			if len(why) > 0 {
				got = nil // stall every broker or none: a partial stall is another fault
			}
			p.brokers = got
		case FaultBrokerKill:
			if clusterBrokers < 3 {
				why = []string{fmt.Sprintf("the Kafka cluster has %d broker(s); killing one needs at least 3 (replication 3, min.insync.replicas 2) so that no acknowledged record is lost", clusterBrokers)}
				break
			}
			got, why = live(brokerNames(o), false)
			if len(why) > 0 {
				got = nil // a broker without a pid file cannot be told apart from the one killed
			}
			for i := range got {
				if got[i].restart == "" {
					got[i].restart = o.RestartCmd["kafka"]
				}
			}
			p.killable = got
		default:
			p.classes = append(p.classes, class)
			continue
		}
		if len(got) == 0 {
			p.skipped = append(p.skipped, fmt.Sprintf("%s: cannot inject here (%s); skipped", class, strings.Join(why, "; ")))
			continue
		}
		p.classes = append(p.classes, class)
	}
	if len(p.classes) == 0 {
		return p, fmt.Errorf("none of the requested faults can be injected here:\n  %s", strings.Join(p.skipped, "\n  "))
	}
	return p, nil
}

// brokerNames are the pid file names of the stream's servers: kafka*.pid
// (kafka when none), or kinesalite's (kinesis).
func brokerNames(o ChaosOptions) []string {
	if o.Stream == "kinesis" {
		if o.PIDDir != "" {
			if _, err := os.Stat(filepath.Join(o.PIDDir, "kinesalite.pid")); err == nil {
				return []string{"kinesalite"}
			}
		}
		return []string{"kinesis"}
	}
	names := []string{"kafka"}
	if o.PIDDir != "" {
		if m, _ := filepath.Glob(filepath.Join(o.PIDDir, "kafka*.pid")); len(m) > 0 {
			names = names[:0]
			for _, f := range m {
				names = append(names, strings.TrimSuffix(filepath.Base(f), ".pid"))
			}
		}
	}
	return names
}

// stallServers stops every server with SIGSTOP, waits d (or until ctx
// ends), and always continues them with SIGCONT.
func stallServers(ctx context.Context, servers []server, d time.Duration) (string, error) {
	var stopped []int
	var names []string
	defer func() {
		for _, pid := range stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	for _, s := range servers {
		pid, err := s.pid()
		if err != nil {
			return strings.Join(names, ", "), err
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return strings.Join(names, ", "), fmt.Errorf("SIGSTOP %s (pid %d): %w", s.name, pid, err)
		}
		stopped = append(stopped, pid)
		names = append(names, fmt.Sprintf("%s (pid %d)", s.name, pid))
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return strings.Join(names, ", "), nil
}

// killServer sends SIGKILL, waits for the process to go, then runs the
// restart hook and waits for a live pid in the pid file again.
func killServer(ctx context.Context, s server) (string, error) {
	target, err := killAndReap(ctx, s)
	if err != nil {
		return target, err
	}
	return target, s.runRestartHook(ctx)
}

// killAndReap sends SIGKILL and waits until the process is reaped, not
// only dead: a restart hook that checks its pid (the local stack's up.sh
// does, with kill -0) takes an unreaped zombie for a running server.
func killAndReap(ctx context.Context, s server) (string, error) {
	pid, err := s.pid()
	if err != nil {
		return s.name, err
	}
	target := fmt.Sprintf("%s (pid %d)", s.name, pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return target, fmt.Errorf("SIGKILL %s: %w", target, err)
	}
	gone := time.Now().Add(time.Minute)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(gone) {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return target, &restartError{fmt.Errorf("%s still exists a minute after SIGKILL (zombie: %v); not restarting it", target, zombie(st))}
		}
		select {
		case <-ctx.Done():
			return target, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return target, nil
}

// runRestartHook runs the server's restart command and checks its pid file
// names a live process again.
func (s server) runRestartHook(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, "sh", "-c", s.restart)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &restartError{fmt.Errorf("restart hook of %s: %w; its last output:\n%s", s.name, err, lastLines(string(out), 12))}
	}
	if _, err := s.pid(); err != nil {
		return &restartError{fmt.Errorf("after the restart hook: %w", err)}
	}
	return nil
}

// zombie reports whether /proc/<pid>/stat says the process is a zombie.
func zombie(stat []byte) bool {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// restartError is a killed server that did not come back: the run cannot
// drain without it, so it ends the run.
type restartError struct{ err error }

func (e *restartError) Error() string { return e.err.Error() }
func (e *restartError) Unwrap() error { return e.err }
