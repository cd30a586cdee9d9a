package ice_test

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
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
// presented in the DTLS handshake, the side that checks it fails with a
// SecurityError (not a transport failure: the session must not fall back),
// the session layer ends the session with security-error on both sides,
// and no DTLS application data record crossed the wire in either
// direction.
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
				// The side that read the forged fingerprint finds the
				// mismatch itself, the other is refused in the handshake;
				// whichever Dial fails first makes Session.Conn terminate
				// the session with security-error, so the other may only
				// see that the session ended. Neither connects, at least one
				// reports the mismatch, none falls back, and only the side
				// that read the forged fingerprint may claim to have found
				// it.
				detector, peer := as, bs
				if !tc.aliceDetects {
					detector, peer = bs, as
				}
				mismatches := 0
				for side, err := range map[string]error{"alice": aerr, "bob": berr} {
					if err == nil {
						t.Fatalf("%s connected despite the forged fingerprint", side)
					}
					var se *ice.SecurityError
					if !errors.As(err, &se) {
						if !errors.Is(err, jingle.ErrEnded) && !errors.Is(err, jingle.ErrTransportFailed) {
							t.Fatalf("%s: %v; want a SecurityError or the end of the session", side, err)
						}
						continue
					}
					mismatches++
					if !errors.Is(err, ice.ErrFingerprintMismatch) || errors.Is(err, jingle.ErrTransportFailed) {
						t.Fatalf("%s: %v: a SecurityError must wrap ErrFingerprintMismatch and not ErrTransportFailed", side, err)
					}
					if wantLocal := (side == "alice") == tc.aliceDetects; se.Local && !wantLocal {
						t.Errorf("%s: claims to have found the mismatch, but read the true fingerprint", side)
					}
				}
				if mismatches == 0 {
					t.Fatal("neither side reported the fingerprint mismatch")
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
				// Both sessions end with security-error.
				for side, sess := range map[string]*jingle.Session{"detector": detector, "peer": peer} {
					select {
					case <-sess.Done():
					case <-ctx.Done():
						t.Fatalf("%s's session did not end", side)
					}
					if r := sess.Reason(); r == nil || r.Condition != jingle.ReasonSecurityError {
						t.Fatalf("%s's session ended with %v, want security-error", side, r)
					}
				}
			})
		}
	}
}
