package jingle_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the real server of the integration tests, started on first use.
var prosody prosodytest.Lazy

// TestMain stops Prosody after the tests, then fails the package if any
// goroutine is left behind: every session goroutine, application handler
// and test network must be stopped by its owner.
func TestMain(m *testing.M) {
	code := prosodytest.Main(m, &prosody)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
