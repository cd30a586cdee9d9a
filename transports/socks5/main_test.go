package socks5_test

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the server of the integration tests, started by the first
// test that needs it.
var prosody prosodytest.Lazy

// TestMain runs the tests, stops Prosody if it was started, and fails the
// run if any goroutine is left behind: streamhosts, checks, activations
// and sessions must all be stopped by their owners.
func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody)) }
