package rtp_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the real server of the acceptance test, started on first use,
// with XEP-0280 carbons for XEP-0353's multi-device behaviour.
var prosody prosodytest.Lazy

// TestMain stops Prosody after the tests, then fails the package if a
// goroutine is left behind: every call, PeerConnection, session and media
// pump must be stopped by its owner.
func TestMain(m *testing.M) {
	prosody.Options.Modules = []string{"carbons"}
	code := prosodytest.Main(m, &prosody)
	for _, s := range []ejabberdtest.Shared{&ejabberd, &ejabberdCluster} {
		if err := s.Shutdown(); err != nil {
			os.Stderr.WriteString("ejabberdtest: " + err.Error() + "\n")
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
