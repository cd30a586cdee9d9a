package testproc

import (
	"bytes"
	"errors"
	"os/exec"
	"sync"
)

// Output collects what a running process writes (set it as the Stdout or
// Stderr of its exec.Cmd) while the test reads it: a bytes.Buffer safe for
// concurrent use. The zero value is ready to use.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// ExitCode returns the exit code of a process from err, the error of its
// Wait or Run: 0 for nil, the code of an *exec.ExitError (-1 when a signal
// ended it). Any other error (the process did not start, or its output
// could not be copied) is returned with code -1.
func ExitCode(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	default:
		return -1, err
	}
}
