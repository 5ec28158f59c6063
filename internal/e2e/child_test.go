package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
)

// child is a `sluice` process the test started.
type child struct {
	cmd    *exec.Cmd
	stdout *testwait.Buffer // the run summary
	stderr *testwait.Buffer
	done   chan error // Wait's result, once
	err    error
	exited bool
}

// startChild starts bin with args; the test's end kills it if it is still
// running.
func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), stdout: &testwait.Buffer{}, stderr: &testwait.Buffer{}, done: make(chan error, 1)}
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if c.wait(0) {
			return
		}
		_ = c.cmd.Process.Kill()
		c.wait(time.Minute)
	})
	return c
}

// wait waits up to d for the process to exit and reports whether it did.
func (c *child) wait(d time.Duration) bool {
	if c.exited {
		return true
	}
	select {
	case c.err = <-c.done:
		c.exited = true
	case <-time.After(d):
	}
	return c.exited
}

// kill ends the process with SIGKILL: a crash.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !c.wait(testwait.Bound()) {
		t.Fatal("a SIGKILLed child did not exit")
	}
}

// stop ends the process with SIGTERM and expects a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !c.wait(testwait.Bound()) {
		t.Fatalf("no exit within %s of SIGTERM:\n%s", testwait.Bound(), c.dump())
	}
	if c.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", c.err, tail(c.stderr.String(), 50))
	}
}

// dump is what a hung child was doing: SIGQUIT makes a Go program print
// every goroutine and exit; then the tail of its stderr.
func (c *child) dump() string {
	if !c.exited {
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		c.wait(30 * time.Second)
	}
	return fmt.Sprintf("child %s (exited: %v, %v), stderr:\n%s", c.cmd.Path, c.exited, c.err, tail(c.stderr.String(), 400))
}

// logProblems logs the child's warnings and errors.
func (c *child) logProblems(t *testing.T, name string) {
	t.Helper()
	for _, line := range strings.Split(c.stderr.String(), "\n") {
		if strings.Contains(line, "ERROR") || strings.Contains(line, "WARN") {
			t.Logf("%s: %s", name, line)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
