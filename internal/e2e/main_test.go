package e2e_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the server of every test here, started on first use.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{PasswordHash: "SHA-256", Modules: []string{"pep"}}}

func TestMain(m *testing.M) {
	code := prosodytest.Main(m, &prosody, &turnProsody)
	if err := coturn.Stop(); err != nil && code == 0 {
		os.Stderr.WriteString("turntest: " + err.Error() + "\n")
		code = 1
	}
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
