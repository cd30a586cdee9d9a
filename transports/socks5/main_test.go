package socks5_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the server of the integration tests, started by the first
// test that needs it.
var prosody prosodytest.Lazy

// TestMain runs the tests, stops Prosody if it was started, and fails the
// run if any goroutine is left behind: streamhosts, checks, activations
// and sessions must all be stopped by their owners.
func TestMain(m *testing.M) {
	code := prosodytest.Main(m, &prosody)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
