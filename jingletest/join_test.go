package jingletest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// fakeT records what Join does with its test: the cleanups it registers
// and the failures it reports (Fatalf ends the goroutine, as t.Fatalf).
type fakeT struct {
	testing.TB
	cleanups []func()
	failures []string
}

func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// join runs Join with f on its own goroutine (Fatalf ends it).
func (f *fakeT) join(n *xmpptest.Network, addr string, c jingletest.Closer) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		xs := jingletest.Join(f, n, addr, nil, c)
		if got := xs.LocalAddr().String(); got != addr {
			f.Errorf("session of %s", got)
		}
	}()
	<-done
}

// closer records its Close and fails it with err.
type closer struct {
	err      error
	closed   int
	deadline time.Duration
}

func (c *closer) Close(ctx context.Context) error {
	c.closed++
	if d, ok := ctx.Deadline(); ok {
		c.deadline = time.Until(d)
	}
	return c.err
}

// TestJoin: Join connects the address and closes the Manager when the
// test ends, within a bounded time; a Close error and an address that
// cannot connect fail the test, naming the address.
func TestJoin(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	f := &fakeT{TB: t}
	c := &closer{}
	f.join(n, xmpptest.Alice, c)
	if len(f.failures) != 0 || len(f.cleanups) != 1 || c.closed != 0 {
		t.Fatalf("after Join: failures %q, %d cleanups, closed %d times", f.failures, len(f.cleanups), c.closed)
	}
	f.cleanups[0]()
	if c.closed != 1 || c.deadline <= 0 || c.deadline > 10*time.Second || len(f.failures) != 0 {
		t.Fatalf("cleanup: closed %d times within %v, failures %q", c.closed, c.deadline, f.failures)
	}

	f = &fakeT{TB: t}
	f.join(n, xmpptest.Bob, &closer{err: errors.New("stuck")})
	f.cleanups[0]()
	if len(f.failures) != 1 || !strings.Contains(f.failures[0], xmpptest.Bob) || !strings.Contains(f.failures[0], "stuck") {
		t.Errorf("a failed Close reported %q", f.failures)
	}

	f = &fakeT{TB: t}
	f.join(n, "carol@example.net/c", nil)
	if len(f.failures) != 0 || len(f.cleanups) != 0 {
		t.Errorf("Join without a Closer: failures %q, %d cleanups", f.failures, len(f.cleanups))
	}

	for _, bad := range []string{"dave@example.net", "dave@@example.net/d"} { // not a full JID; not a JID
		f = &fakeT{TB: t}
		f.join(n, bad, &closer{})
		if len(f.failures) != 1 || !strings.Contains(f.failures[0], bad) || len(f.cleanups) != 0 {
			t.Errorf("Join of %q: failures %q, %d cleanups", bad, f.failures, len(f.cleanups))
		}
	}
}
