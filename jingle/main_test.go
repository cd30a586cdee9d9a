package jingle_test

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the real server of the integration tests, started on first use.
var prosody prosodytest.Lazy

// TestMain stops Prosody after the tests, then fails the package if any
// goroutine is left behind: every session goroutine, application handler
// and test network must be stopped by its owner.
func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody)) }
