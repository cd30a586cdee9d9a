package ibb_test

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the shared server of the integration tests.
var prosody prosodytest.Lazy

// TestMain stops prosody, then fails the package's tests if any goroutine
// is left behind: every IQ sender, open and close goroutine must be
// stopped by its Conn.
func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody)) }
