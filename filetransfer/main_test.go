package filetransfer_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine is left behind: every
// worker, pump and session goroutine must be stopped by its owner.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
