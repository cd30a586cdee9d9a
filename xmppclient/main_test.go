package xmppclient

import (
	"os"
	"testing"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// prosody is the shared server of the integration tests. It stores
// SCRAM-SHA-256 credentials, so it offers SCRAM-SHA-256 and PLAIN (Prosody
// 0.12's internal_hashed offers one SCRAM family only); the SCRAM-SHA-1
// tests start their own server.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{PasswordHash: "SHA-256"}}

// TestMain stops prosody after the tests, then looks for leaked
// goroutines.
func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody)) }
