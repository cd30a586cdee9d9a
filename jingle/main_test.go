package jingle_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left behind: every
// session goroutine, application handler and test network must be stopped
// by its owner.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
