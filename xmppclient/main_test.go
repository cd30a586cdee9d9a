package xmppclient

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// prosody is the shared server of the integration tests. It stores
// SCRAM-SHA-256 credentials, so it offers SCRAM-SHA-256 and PLAIN (Prosody
// 0.12's internal_hashed offers one SCRAM family only); the SCRAM-SHA-1
// tests start their own server.
var prosody = prosodytest.Lazy{Options: prosodytest.Options{PasswordHash: "SHA-256"}}

// mainRunner runs the tests and stops prosody before goleak looks for
// leaked goroutines.
type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int { return prosodytest.Main(r.m, &prosody) }

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(mainRunner{m})
}
