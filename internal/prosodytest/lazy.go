package prosodytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// errLazyStopped is the start error of a Lazy whose Main has finished
// before any test asked for the server.
var errLazyStopped = errors.New("prosodytest: shared server already shut down by Main")

// Lazy starts one Server on first use and shares it between the tests of
// a package; Main stops it. The zero value is ready to use.
type Lazy struct {
	// Options configure the server. Set them before the first Get.
	Options Options

	once sync.Once
	srv  *Server
	err  error
}

// Get returns the shared server, starting it on the first call. When
// prosody is not installed it skips t, or fails t if EnvRequire is "1".
// Other start errors fail t (every later Get reports the same error).
func (l *Lazy) Get(t testing.TB) *Server {
	t.Helper()
	l.once.Do(func() {
		// Not t.Context(): the server outlives this test.
		l.srv, l.err = Start(context.Background(), l.Options)
	})
	if l.err != nil {
		skip, msg := verdict(l.err, os.Getenv(EnvRequire) == "1")
		if skip {
			t.Skip(msg)
		} else {
			t.Fatal(msg)
		}
		return nil
	}
	return l.srv
}

// stop stops the server if Get started one; later Gets fail.
func (l *Lazy) stop() error {
	l.once.Do(func() { l.err = errLazyStopped })
	if l.srv == nil {
		return nil
	}
	return l.srv.Stop()
}

// Main runs the tests of m and then stops the servers of ls that a test
// started. Use it from TestMain: os.Exit(prosodytest.Main(m, &l)). A
// failure to stop prosody cleanly turns a passing run into a failing one.
func Main(m *testing.M, ls ...*Lazy) int {
	code := m.Run()
	for _, l := range ls {
		if err := l.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "prosodytest: stopping shared prosody: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// verdict decides how a test reacts to a Start error: skip it only when
// prosody is not installed and it is not required.
func verdict(err error, required bool) (skip bool, msg string) {
	if errors.Is(err, ErrNotInstalled) {
		if required {
			return false, fmt.Sprintf("%v (%s=1 is set, so this is a failure)", err, EnvRequire)
		}
		return true, fmt.Sprintf("%v (set %s=1 to fail instead of skipping)", err, EnvRequire)
	}
	return false, err.Error()
}
