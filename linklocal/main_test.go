package linklocal_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if helper := os.Getenv(helperEnv); helper != "" {
		// A helper process started by a netns test: run only the helper
		// (selected with -test.run) and skip the leak check of the parent.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}
