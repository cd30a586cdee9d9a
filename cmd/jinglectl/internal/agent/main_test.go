package agent

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

var prosody prosodytest.Lazy

// prosodyPEP has mod_pep, for OMEMO (device lists and bundles): the tests
// on prosody run unencrypted.
var prosodyPEP = prosodytest.Lazy{Options: prosodytest.Options{Modules: []string{"pep"}}}

func TestMain(m *testing.M) {
	// OMEMO state (DefaultOMEMOStateFile) goes to a temporary directory,
	// never to the user's.
	state, err := os.MkdirTemp("", "jinglectl-state-")
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", state)
	os.Exit(testserver.MainNoLeaks(m, &prosody, &prosodyPEP, testserver.Cleanup(func() error {
		_ = os.RemoveAll(state)
		return nil
	})))
}
