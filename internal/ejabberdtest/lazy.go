package ejabberdtest

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
var errLazyStopped = errors.New("ejabberdtest: shared server already shut down by Main")

// Shared is a server shared by the tests of a package and stopped by Main:
// a Lazy or a LazyCluster.
type Shared interface {
	// Shutdown stops the server if a test started it; later uses fail.
	Shutdown() error
}

// Lazy starts one node on first use and shares it between the tests of a
// package; Main stops it. The zero value is ready to use.
type Lazy struct {
	// Options configure the node. Set them before the first Get.
	Options Options

	once sync.Once
	srv  *Server
	err  error
}

// Get returns the shared node, starting it on the first call. When
// ejabberd is not installed it skips t, or fails t if EnvRequire is "1".
// Other start errors fail t (every later Get reports the same error).
func (l *Lazy) Get(t testing.TB) *Server {
	t.Helper()
	l.once.Do(func() {
		// Not t.Context(): the server outlives this test.
		l.srv, l.err = Start(context.Background(), l.Options)
	})
	if l.err != nil {
		react(t, l.err)
		return nil
	}
	return l.srv
}

// Shutdown stops the node if Get started one; later Gets fail.
func (l *Lazy) Shutdown() error {
	l.once.Do(func() { l.err = errLazyStopped })
	if l.srv == nil {
		return nil
	}
	return l.srv.Stop()
}

// LazyCluster is Lazy for a two-node Cluster.
type LazyCluster struct {
	// Options configure both nodes. Set them before the first Get.
	Options Options

	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the shared cluster, starting it on the first call, and
// skips or fails t like Lazy.Get.
func (l *LazyCluster) Get(t testing.TB) *Cluster {
	t.Helper()
	l.once.Do(func() {
		l.c, l.err = StartCluster(context.Background(), l.Options)
	})
	if l.err != nil {
		react(t, l.err)
		return nil
	}
	return l.c
}

// Shutdown stops the cluster if Get started one; later Gets fail.
func (l *LazyCluster) Shutdown() error {
	l.once.Do(func() { l.err = errLazyStopped })
	if l.c == nil {
		return nil
	}
	return l.c.Stop()
}

// Main runs the tests of m and then stops the shared servers tests
// started. Use it from TestMain: os.Exit(ejabberdtest.Main(m, &l)). A
// failure to stop a server cleanly turns a passing run into a failing one.
func Main(m *testing.M, shared ...Shared) int {
	code := m.Run()
	for _, s := range shared {
		if err := s.Shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "ejabberdtest: stopping a shared server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// react skips or fails t after a start error.
func react(t testing.TB, err error) {
	t.Helper()
	skip, msg := verdict(err, os.Getenv(EnvRequire) == "1")
	if skip {
		t.Skip(msg)
	}
	t.Fatal(msg)
}

// verdict decides how a test reacts to a start error: skip it only when
// ejabberd is not installed and it is not required.
func verdict(err error, required bool) (skip bool, msg string) {
	if errors.Is(err, ErrNotInstalled) {
		if required {
			return false, fmt.Sprintf("%v (%s=1 is set, so this is a failure)", err, EnvRequire)
		}
		return true, fmt.Sprintf("%v (set %s=1 to fail instead of skipping)", err, EnvRequire)
	}
	return false, err.Error()
}
