package ice_test

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
	"github.com/jinglekit/jinglekit/internal/turntest"
)

// prosody is the shared server of the integration tests: it hands out TURN
// credentials for the shared coturn through mod_turn_external (XEP-0215).
var prosody prosodytest.Lazy

// coturn is the shared TURN server, started on first use.
var coturn turntest.Lazy

// TestMain stops prosody and coturn, then fails the package's tests if any
// goroutine is left behind: every agent, association, reader and
// signalling goroutine must be stopped by Link.Close.
func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody, &coturn)) }
