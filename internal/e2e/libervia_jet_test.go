package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/liberviatest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// lvOMEMO switches OMEMO 0.3 on in profile's backend toward carol.
func lvOMEMO(t *testing.T, h *liberviatest.Harness, profile string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.StartOMEMO(ctx, profile, "carol@"+liberviatest.Domain); err != nil {
		t.Fatal(err)
	}
}

// TestLiberviaEncrypted exchanges 10 MiB files encrypted end to end
// (XEP-0391 JET with XEP-0396 OMEMO 0.3) with a real Libervia 0.9, both
// directions, over S5B and over IBB: every file arrives byte-identical
// (Libervia decrypted ours; we decrypted and authenticated its), and both
// sides say the transfer was encrypted.
func TestLiberviaEncrypted(t *testing.T) {
	liberviatest.SkipUnless(t, liberviatest.CheckOMEMO())
	h, carol := startLibervia(t)
	lvOMEMO(t, h, "bob")
	for i, transport := range []string{socks5.NS, ibb.NSTransport} {
		t.Run("to-libervia-"+lvName(transport), func(t *testing.T) {
			res := sendToLibervia(t, h, carol, transport, uint64(21+10*i), secureWith(carol))
			if !res.Encrypted {
				t.Fatalf("sent over %s unencrypted", res.Transport)
			}
		})
	}
	// S5B from bob's backend (already up, OMEMO on toward carol); IBB
	// from an alice forced to IBB (one backend start less: they are slow).
	for i, tc := range []struct {
		transport string
		profile   string
	}{{socks5.NS, "bob"}, {ibb.NSTransport, "alice"}} {
		t.Run("from-libervia-"+lvName(tc.transport), func(t *testing.T) {
			if tc.profile == "alice" {
				lvUp(t, h, "alice", "LV_FORCE_IBB=1")
				lvOMEMO(t, h, "alice")
			}
			r := receiveFromLibervia(t, h, carol, tc.profile, tc.transport, uint64(22+10*i), true)
			if !r.Encrypted {
				t.Fatalf("received over %s unencrypted", r.Transport)
			}
		})
	}
}
