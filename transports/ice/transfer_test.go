package ice_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestTransfer moves random data over each dialect, in both directions,
// between two jinglekit clients on the in-memory network, with host
// candidates on loopback.
func TestTransfer(t *testing.T) {
	for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
		for _, tc := range []struct {
			name string
			size int
		}{
			{"1 MiB", 1 << 20},
			{"64 MiB", 64 << 20},
		} {
			t.Run(ns+"/"+tc.name, func(t *testing.T) {
				if testing.Short() && tc.size > 1<<20 {
					t.Skip("large")
				}
				n := xmpptest.NewNetwork(t)
				alice := newSide(t, n, xmpptest.Alice, loopbackConfig(t))
				bob := newSide(t, n, xmpptest.Bob, loopbackConfig(t))
				_, bs, ca, cb := session(t, alice, bob, xmpptest.Bob, ns)
				data := randomBytes(t, tc.size)
				transfer(t, ca, cb, data)
				transfer(t, cb, ca, data[:len(data)/4])
				if err := ca.Close(); err != nil {
					t.Fatal(err)
				}
				if err := bs.Terminate(tctx(t), jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestRestart restarts ICE in the middle of a transfer, from either side:
// both sides get new credentials of the next generation through
// transport-info, a new pair is selected, and the stream carries on
// without losing or reordering a byte.
func TestRestart(t *testing.T) {
	for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
		for _, who := range []string{"initiator", "responder"} {
			t.Run(ns+"/"+who, func(t *testing.T) {
				n := xmpptest.NewNetwork(t)
				alice := newSide(t, n, xmpptest.Alice, loopbackConfig(t))
				bob := newSide(t, n, xmpptest.Bob, loopbackConfig(t))
				as, bs, ca, cb := session(t, alice, bob, xmpptest.Bob, ns)
				la, lb := transportOf(t, as), transportOf(t, bs)
				ua, ga := la.LocalUfrag()
				ub, gb := lb.LocalUfrag()
				data := randomBytes(t, 8<<20)
				errc := make(chan error, 1)
				go func() {
					_, err := ca.Write(data)
					errc <- err
				}()
				got := make([]byte, len(data))
				if _, err := io.ReadFull(cb, got[:2<<20]); err != nil {
					t.Fatal(err)
				}
				restarter := la
				if who == "responder" {
					restarter = lb
				}
				if err := restarter.Restart(tctx(t)); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(cb, got[2<<20:]); err != nil {
					t.Fatal(err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatal("data differs after the restart")
				}
				// Both sides have moved to the next generation.
				waitFor(t, func() bool {
					ua2, ga2 := la.LocalUfrag()
					ub2, gb2 := lb.LocalUfrag()
					return ua2 != ua && ub2 != ub && ga2 == ga+1 && gb2 == gb+1 &&
						la.RemoteUfrag() == ub2 && lb.RemoteUfrag() == ua2
				})
				transfer(t, cb, ca, data[:1<<20])
			})
		}
	}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
