package rtp_test

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the real server of the acceptance test, started on first use,
// with XEP-0280 carbons for XEP-0353's multi-device behaviour.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{Modules: []string{"carbons"}}}

// TestMain stops Prosody and ejabberd after the tests, then fails the
// package if a goroutine is left behind: every call, PeerConnection,
// session and media pump must be stopped by its owner.
func TestMain(m *testing.M) {
	os.Exit(testserver.MainNoLeaks(m, &prosody, &ejabberd, &ejabberdCluster))
}
