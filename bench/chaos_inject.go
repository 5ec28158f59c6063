package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// procImage is how a running server was started: enough to start it again
// the same way after a kill when no restart hook was given.
type procImage struct {
	argv, env []string
	dir, log  string // working directory; where its stdout went ("" = /dev/null)
}

// readProc reads a live process's command line, environment, working
// directory and stdout from /proc.
func readProc(pid int) (procImage, error) {
	var img procImage
	split := func(b []byte) []string {
		var out []string
		for _, f := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			out = append(out, string(f))
		}
		return out
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return img, fmt.Errorf("command line of pid %d: %v", pid, err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return img, fmt.Errorf("environment of pid %d: %w", pid, err)
	}
	img.argv, img.env = split(cmdline), split(environ)
	if img.dir, err = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil {
		return img, fmt.Errorf("working directory of pid %d: %w", pid, err)
	}
	if out, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid)); err == nil && strings.HasPrefix(out, "/") {
		if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
			img.log = out
		}
	}
	return img, nil
}

// start runs the image again in its own session (a server, not a child
// that dies with the bench), appending to its old log, and writes its pid
// to pidFile. The bench reaps it if it exits during the run.
func (img procImage) start(pidFile string) (int, error) {
	cmd := exec.Command(img.argv[0], img.argv[1:]...)
	cmd.Env, cmd.Dir = img.env, img.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if img.log != "" {
		f, err := os.OpenFile(img.log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	return pid, os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", pid)), 0o644)
}

// killBroker kills one Kafka broker with SIGKILL, leaves it down for
// --stall, starts it again (its restart hook, or its own command line
// again) and waits until the cluster lists every broker again.
func (r *chaosRun) killBroker(ctx context.Context) (string, error) {
	s := r.plan.killable[r.rng.IntN(len(r.plan.killable))]
	pid, err := s.pid()
	if err != nil {
		return s.name, err
	}
	var img procImage
	if s.restart == "" {
		if img, err = readProc(pid); err != nil {
			return s.name, fmt.Errorf("cannot restart %s without a restart hook: %w; not killed", s.name, err)
		}
	}
	addrs := sourceBrokers(r.o.Options, r.cfg)
	before, err := clusterBrokers(ctx, addrs)
	if err != nil {
		return s.name, fmt.Errorf("not killed: %w", err)
	}
	target, err := killAndReap(ctx, s)
	if err != nil {
		return target, err
	}
	select {
	case <-ctx.Done():
	case <-time.After(r.o.Stall):
	}
	how := "its restart hook"
	if s.restart != "" {
		err = s.runRestartHook(context.WithoutCancel(ctx))
	} else {
		var npid int
		npid, err = img.start(s.pidFile)
		how = fmt.Sprintf("its own command line again, pid %d", npid)
		if err != nil {
			err = &restartError{fmt.Errorf("start %s again: %w", s.name, err)}
		}
	}
	if err != nil {
		return target, err
	}
	target += ", down " + r.o.Stall.String() + ", restarted with " + how
	// Back when the cluster lists it again (bounded: a broker that never
	// rejoins ends the run, which cannot be judged without it).
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if n, err := clusterBrokers(context.WithoutCancel(ctx), addrs); err == nil && n >= before {
			return target, nil
		}
		if time.Now().After(deadline) {
			return target, &restartError{fmt.Errorf("%s was restarted but the cluster did not list %d brokers again within 5 minutes", s.name, before)}
		}
		select {
		case <-ctx.Done():
			return target, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// stopLength is how long sigstop keeps a consumer stopped: past its
// Kinesis lease (duration plus two renewals, so another consumer has had
// a round to take the shards) or its Kafka session.
func (r *chaosRun) stopLength() time.Duration {
	if c, ok := r.cfg.Source.Spec.Config.(*kinesissource.Config); ok {
		return c.Lease.Duration.D() + 2*c.Lease.RenewEvery.D()
	}
	if d, err := time.ParseDuration(configField(r.cfg.Source.Spec.Config, "session_timeout")); err == nil && d > 0 {
		return d + 5*time.Second
	}
	return 45 * time.Second
}

// stopConsumer SIGSTOPs a consumer past its lease (or session) and
// SIGCONTs it. On Kinesis it reads who held which shard before and after:
// the stopped consumer's shards must have gone to the others before it
// continues; whether it then checkpoints over them is what the tail's
// checkpoint watch (a checkpoint moving back) and the audit catch.
func (r *chaosRun) stopConsumer(ctx context.Context) (string, error) {
	ms := r.fleet.members(false, r.o.Consumers)
	if len(ms) == 0 {
		return "", errors.New("no live consumer to stop")
	}
	m := ms[r.rng.IntN(len(ms))]
	d := r.stopLength()
	target := fmt.Sprintf("consumer %d (pid %d) stopped %s", m.slot, m.cmd.Process.Pid, d)
	var before map[string][]string
	if r.stream.tail != nil {
		before, _ = r.stream.tail.owners(ctx)
	}
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return target, fmt.Errorf("SIGSTOP: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	var after map[string][]string
	if r.stream.tail != nil {
		after, _ = r.stream.tail.owners(context.WithoutCancel(ctx))
	}
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return target, fmt.Errorf("SIGCONT: %w", err)
	}
	if before != nil && after != nil {
		target += "; " + takeover(before, after, len(r.fleet.members(false, 1<<30)) > 1)
	}
	return target, nil
}

// takeover says what happened to the stopped consumer's shards: the owner
// that held shards before and none after is the stopped one.
func takeover(before, after map[string][]string, others bool) string {
	var stopped []string
	for owner, shards := range before {
		if len(after[owner]) == 0 {
			stopped = append(stopped, shards...)
		}
	}
	if len(stopped) == 0 {
		return "it held no shard lease"
	}
	slices.Sort(stopped)
	var taken []string
	for _, shards := range after { // the stopped owner holds none: these are the others
		for _, sh := range shards {
			if slices.Contains(stopped, sh) {
				taken = append(taken, sh)
			}
		}
	}
	if !others {
		return fmt.Sprintf("its %d shard lease(s) expired (no other consumer to take them)", len(stopped))
	}
	return fmt.Sprintf("its %d shard lease(s) expired; %d taken over by other consumers before it continued", len(stopped), len(taken))
}
