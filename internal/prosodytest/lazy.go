package prosodytest

import (
	"context"
	"errors"
	"testing"

	"github.com/jinglekit/jinglekit/internal/testserver"
)

// program is what Lazy.Get needs to skip or fail a test without prosody.
var program = testserver.Program{NotInstalled: ErrNotInstalled, Env: EnvRequire}

// errLazyStopped is the start error of a Lazy that TestMain has shut down
// before a test asked for the server.
var errLazyStopped = errors.New("prosodytest: shared server already shut down by TestMain")

// Lazy starts one Server on first use and shares it between the tests of
// a package; TestMain stops it (testserver.Main). The zero value is ready to use.
type Lazy struct {
	// Options configure the server. Set them before the first Get.
	Options Options

	shared testserver.Lazy[*Server]
}

// Get returns the shared server, starting it on the first call. When
// prosody is not installed it skips t, or fails t if EnvRequire is "1".
// Other start errors fail t (every later Get reports the same error).
func (l *Lazy) Get(t testing.TB) *Server {
	t.Helper()
	// Not t.Context(): the server outlives this test.
	return l.shared.For(t, program, func() (*Server, error) { return Start(context.Background(), l.Options) })
}

// Shutdown stops the server if Get started one; later Gets fail. TestMain
// calls it through testserver.Main.
func (l *Lazy) Shutdown() error {
	return l.shared.Shutdown((*Server).Stop, errLazyStopped)
}
