package omemo

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the server of the tests, with mod_pep for the device lists
// and bundles.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{Modules: []string{"pep"}}}

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
