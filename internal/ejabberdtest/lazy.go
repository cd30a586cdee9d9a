package ejabberdtest

import (
	"context"
	"errors"
	"testing"

	"github.com/jinglekit/jinglekit/internal/testserver"
)

// program is what Lazy.Get needs to skip or fail a test without ejabberd.
var program = testserver.Program{NotInstalled: ErrNotInstalled, Env: EnvRequire}

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

	shared testserver.Lazy[*Server]
}

// Get returns the shared node, starting it on the first call. When
// ejabberd is not installed it skips t, or fails t if EnvRequire is "1".
// Other start errors fail t (every later Get reports the same error).
func (l *Lazy) Get(t testing.TB) *Server {
	t.Helper()
	// Not t.Context(): the server outlives this test.
	return l.shared.For(t, program, func() (*Server, error) { return Start(context.Background(), l.Options) })
}

// Shutdown stops the node if Get started one; later Gets fail.
func (l *Lazy) Shutdown() error {
	return l.shared.Shutdown((*Server).Stop, errLazyStopped)
}

// LazyCluster is Lazy for a two-node Cluster.
type LazyCluster struct {
	// Options configure both nodes. Set them before the first Get.
	Options Options

	shared testserver.Lazy[*Cluster]
}

// Get returns the shared cluster, starting it on the first call, and
// skips or fails t like Lazy.Get.
func (l *LazyCluster) Get(t testing.TB) *Cluster {
	t.Helper()
	// Not t.Context(): the server outlives this test.
	return l.shared.For(t, program, func() (*Cluster, error) { return StartCluster(context.Background(), l.Options) })
}

// Shutdown stops the cluster if Get started one; later Gets fail.
func (l *LazyCluster) Shutdown() error {
	return l.shared.Shutdown((*Cluster).Stop, errLazyStopped)
}

// Main runs the tests of m and then stops the shared servers tests
// started. Use it from TestMain: os.Exit(ejabberdtest.Main(m, &l)). A
// failure to stop a server cleanly turns a passing run into a failing one.
func Main(m *testing.M, shared ...Shared) int {
	stops := make([]func() error, len(shared))
	for i, s := range shared {
		stops[i] = s.Shutdown
	}
	return testserver.Main(m, "ejabberdtest", stops...)
}
