//go:build unix

package testproc

import (
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

func TestOutputConcurrent(t *testing.T) {
	var o Output
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = o.Write([]byte("x"))
				_ = o.String()
			}
		})
	}
	wg.Wait()
	if got := o.String(); got != strings.Repeat("x", 400) {
		t.Errorf("collected %d bytes, want 400", len(got))
	}
}

func TestExitCode(t *testing.T) {
	for script, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -9 $$": -1} {
		var out Output
		cmd := Command("sh", "-c", "echo out; "+script)
		cmd.Stdout = &out
		code, err := ExitCode(Run(cmd))
		if err != nil || code != want {
			t.Errorf("%s: ExitCode = %d, %v; want %d", script, code, err, want)
		}
		if out.String() != "out\n" {
			t.Errorf("%s: output %q", script, out.String())
		}
	}
	notStarted := Run(Command("/nonexistent/program"))
	if code, err := ExitCode(notStarted); code != -1 || !errors.Is(err, notStarted) {
		t.Errorf("a program that did not start: ExitCode = %d, %v", code, err)
	}
	var ee *exec.ExitError
	if errors.As(notStarted, &ee) {
		t.Errorf("a program that did not start has an exit status: %v", notStarted)
	}
}
