package ibb_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the shared server of the integration tests.
var prosody prosodytest.Lazy

// mainRunner runs the tests and stops prosody before goleak looks for
// leaked goroutines.
type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int { return prosodytest.Main(r.m, &prosody) }

// TestMain fails the package's tests if any goroutine is left behind: every
// IQ sender, open and close goroutine must be stopped by its Conn.
func TestMain(m *testing.M) { goleak.VerifyTestMain(mainRunner{m}) }
