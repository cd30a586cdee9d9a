package e2e_test

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the server of every test here, started on first use.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{PasswordHash: "SHA-256", Modules: []string{"pep"}}}

// TestMain stops the shared servers (Prosody, coturn, ejabberd) after the
// tests, then fails the package if a goroutine is left behind.
func TestMain(m *testing.M) {
	os.Exit(testserver.MainNoLeaks(m, &prosody, &turnProsody, &coturn, &ejabberd, &ejabberdCluster))
}
