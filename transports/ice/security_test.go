package ice_test

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/internal/jingletest"
	"github.com/jinglekit/jinglekit/internal/xmpptest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
)

var fingerprintRE = regexp.MustCompile(`(<fingerprint[^>]*>)([^<]*)(</fingerprint>)`)

// forge replaces every DTLS fingerprint in the session-initiate (offer) or
// session-accept (answer) that passes the network with fake, as an
// attacker on the signalling path would, or as a peer whose media path is
// intercepted would see it.
func forge(n *xmpptest.Network, action string, fake string) {
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if !bytes.Contains(st, []byte(`action="`+action+`"`)) && !bytes.Contains(st, []byte(`action='`+action+`'`)) {
			return st
		}
		return fingerprintRE.ReplaceAll(st, []byte("${1}"+fake+"${3}"))
	})
}

// TestForgedFingerprint: when a fingerprint does not match the certificate
// presented in the DTLS handshake, both Dials fail with a SecurityError
// (not a transport failure: the session must not fall back), no DTLS
// application data record crossed the wire in either direction, and the
// application ends the session with security-error.
func TestForgedFingerprint(t *testing.T) {
	other, err := ice.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, action string
		// detector is the side whose check fails: the one that reads the
		// forged fingerprint.
		aliceDetects bool
	}{
		{"answer forged", "session-accept", true},
		{"offer forged", "session-initiate", false},
	} {
		for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
			t.Run(tc.name+"/"+ns, func(t *testing.T) {
				n := xmpptest.NewNetwork(t)
				alice := newSide(t, n, xmpptest.Alice, loopbackConfig(t))
				bob := newSide(t, n, xmpptest.Bob, loopbackConfig(t))
				forge(n, tc.action, other.Fingerprint)
				ctx := tctx(t)
				as, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), jingle.Offer{
					Name: "file", Description: jingletest.Desc("file"), Transports: []string{ns},
				})
				if err != nil {
					t.Fatal(err)
				}
				bs := incoming(t, bob)
				if err := bs.Accept(ctx, nil); err != nil {
					t.Fatal(err)
				}
				type res struct {
					err error
				}
				ch := make(chan res, 1)
				go func() { _, err := bs.Conn(ctx, "file"); ch <- res{err} }()
				_, aerr := as.Conn(ctx, "file")
				berr := (<-ch).err
				for side, err := range map[string]error{"alice": aerr, "bob": berr} {
					var se *ice.SecurityError
					switch {
					case err == nil:
						t.Fatalf("%s connected despite the forged fingerprint", side)
					case !errors.Is(err, ice.ErrFingerprintMismatch) || !errors.As(err, &se):
						t.Fatalf("%s: %v; want a SecurityError", side, err)
					case errors.Is(err, jingle.ErrTransportFailed):
						t.Fatalf("%s: %v wraps ErrTransportFailed: the session would fall back", side, err)
					}
					// The side that read the forged fingerprint found the
					// mismatch; the other was refused.
					wantLocal := (side == "alice") == tc.aliceDetects
					if se.Local != wantLocal {
						t.Errorf("%s: Local=%v, want %v", side, se.Local, wantLocal)
					}
				}
				for side, s := range map[string]*jingle.Session{"alice": as, "bob": bs} {
					st := transportOf(t, s).Stats()
					if st.ApplicationRecordsSent != 0 || st.ApplicationRecordsReceived != 0 || st.BytesSent != 0 || st.BytesReceived != 0 {
						t.Errorf("%s: data crossed the wire: %+v", side, st)
					}
					if st.HandshakeRecordsSent == 0 && st.HandshakeRecordsReceived == 0 {
						t.Errorf("%s: no DTLS handshake seen at all: %+v", side, st)
					}
				}
				// The side that detected it terminates with security-error.
				detector, peer, derr := as, bs, aerr
				if !tc.aliceDetects {
					detector, peer, derr = bs, as, berr
				}
				var se *ice.SecurityError
				errors.As(derr, &se)
				if err := detector.Terminate(ctx, se.JingleReason()); err != nil {
					t.Fatal(err)
				}
				<-peer.Done()
				if r := peer.Reason(); r == nil || r.Condition != jingle.ReasonSecurityError {
					t.Fatalf("peer's session ended with %v, want security-error", r)
				}
			})
		}
	}
}
