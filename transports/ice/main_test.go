package ice_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/turntest"
)

// prosody is the shared server of the integration tests: it hands out TURN
// credentials for the shared coturn through mod_turn_external (XEP-0215).
var prosody prosodytest.Lazy

// coturn is the shared TURN server, started on first use.
var coturn turntest.Lazy

type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int {
	code := prosodytest.Main(r.m, &prosody)
	if err := coturn.Stop(); err != nil && code == 0 {
		code = 1
	}
	return code
}

// TestMain fails the package's tests if any goroutine is left behind:
// every agent, association, reader and signalling goroutine must be
// stopped by Link.Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(mainRunner{m}) }
