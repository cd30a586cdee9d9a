package e2e_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/turntest"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// turnTTL is the lifetime of the TURN credentials Prosody hands out.
const turnTTL = 3600

// turnProsody is the server of the relayed transfers: it hands out TURN
// credentials for coturn through mod_turn_external (XEP-0215).
var turnProsody prosodytest.Lazy

// coturn is the TURN server of the relayed transfers, started on first use.
var coturn turntest.Lazy

var configureTURNProsody sync.Once

// integration starts coturn, then a Prosody configured to announce it with
// XEP-0215 (mod_turn_external), over UDP and TCP.
func integration(t *testing.T) (*prosodytest.Server, *turntest.Server) {
	t.Helper()
	turn := coturn.Get(t)
	configureTURNProsody.Do(func() {
		module, conf := turn.ProsodyConfig(turnTTL)
		turnProsody.Options.Modules, turnProsody.Options.HostConfig = []string{module}, conf
	})
	return turnProsody.Get(t), turn
}

// testLogger logs to t when JINGLEKIT_ICE_DEBUG=1, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("JINGLEKIT_ICE_DEBUG") != "1" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// loopbackConfig gathers loopback host candidates only.
func loopbackConfig(t testing.TB) ice.Config {
	return ice.Config{
		IncludeLoopback: true,
		IPFilter:        func(ip net.IP) bool { return ip.IsLoopback() },
		Logger:          testLogger(t),
	}
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
