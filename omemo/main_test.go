package omemo

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the server of the tests, with mod_pep for the device lists
// and bundles.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{Modules: []string{"pep"}}}

func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody)) }
