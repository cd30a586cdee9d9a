package omemo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// countingStream counts the bundle fetches (X3DH key exchanges) it sends.
type countingStream struct {
	IQSender
	bundleFetches atomic.Int32
}

func (c *countingStream) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, payload); err != nil {
		return nil, err
	}
	e.Flush()
	if strings.Contains(buf.String(), NodeBundlesPrefix) && iq.Type == stanza.GetIQ {
		c.bundleFetches.Add(1)
	}
	return c.IQSender.SendIQElement(ctx, xml.NewDecoder(&buf), iq)
}

type account struct {
	jid    jid.JID
	stream *countingStream
	dir    string
}

func login(t *testing.T, srv *prosodytest.Server, bare, pass, res string) *countingStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: jid.MustParse(bare + "/" + res), Password: pass, Server: srv.C2SAddr, CAFile: srv.CAFile,
	})
	if err != nil {
		t.Fatalf("login %s: %v", bare, err)
	}
	t.Cleanup(func() { c.Close() })
	return &countingStream{IQSender: c.Session()}
}

func newAccount(t *testing.T, srv *prosodytest.Server, name string) *account {
	t.Helper()
	bare, pass := srv.NewUser(t, name)
	return &account{jid: jid.MustParse(bare), stream: login(t, srv, bare, pass, "omemo"), dir: t.TempDir()}
}

func (a *account) open(t *testing.T, file string) *Manager {
	t.Helper()
	m, err := Open(filepath.Join(a.dir, file), a.stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

func roundTrip(t *testing.T, from, to *Manager, toJID, fromJID jid.JID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	km := make([]byte, 16)
	rand.Read(km)
	iv := make([]byte, 12)
	e, err := from.Encrypt(ctx, toJID, km, iv)
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	got, err := to.Decrypt(ctx, fromJID, e)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	if !bytes.Equal(got, km) {
		t.Fatal("decrypted key material differs")
	}
}

// TestSessionsSurviveRestart: the first message makes a session (one
// bundle fetch, a pre-key message); the state is a 0600 file; after both
// sides reload their state, the next message needs no bundle fetch.
func TestSessionsSurviveRestart(t *testing.T) {
	srv := prosody.Get(t)
	alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
	am, bm := alice.open(t, "omemo.json"), bob.open(t, "omemo.json")
	roundTrip(t, am, bm, bob.jid, alice.jid)
	if n := alice.stream.bundleFetches.Load(); n != 1 {
		t.Fatalf("%d bundle fetches for the first message, want 1", n)
	}
	st, err := os.Stat(filepath.Join(alice.dir, "omemo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", st.Mode().Perm())
	}
	// Restart both: same device ids, same sessions.
	am2, bm2 := alice.open(t, "omemo.json"), bob.open(t, "omemo.json")
	if am2.DeviceID() != am.DeviceID() || am2.Fingerprint() != am.Fingerprint() {
		t.Fatal("alice's device changed across a restart")
	}
	roundTrip(t, am2, bm2, bob.jid, alice.jid)
	roundTrip(t, bm2, am2, alice.jid, bob.jid) // bob → alice builds bob's own session
	roundTrip(t, am2, bm2, bob.jid, alice.jid)
	if n := alice.stream.bundleFetches.Load(); n != 1 {
		t.Fatalf("%d bundle fetches in all, want 1: the session was not reused", n)
	}
	if am2.SessionCount(bob.jid.String()) != 1 {
		t.Fatalf("alice has %d sessions with bob, want 1", am2.SessionCount(bob.jid.String()))
	}
}

// TestChangedIdentityReported: bob's device reappears under the same id
// with another identity key: alice reports it and does not encrypt for it
// until the new fingerprint is verified.
func TestChangedIdentityReported(t *testing.T) {
	srv := prosody.Get(t)
	alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
	am, bm := alice.open(t, "omemo.json"), bob.open(t, "omemo.json")
	roundTrip(t, am, bm, bob.jid, alice.jid)

	// A new identity under the old device id.
	bm2, err := Open(filepath.Join(bob.dir, "other.json"), bob.stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	bm2.st.st.DeviceID = bm.DeviceID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bm2.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	// alice's session still uses the old key; drop it to force a look at
	// the new bundle, as a new install would.
	am.st.mu.Lock()
	delete(am.st.st.Sessions, deviceKey(bob.jid.String(), bm.DeviceID()))
	am.st.mu.Unlock()
	_, err = am.Encrypt(ctx, bob.jid, make([]byte, 16), make([]byte, 12))
	var changed *IdentityChangedError
	if !errors.Is(err, ErrNoDevices) || !errors.As(err, &changed) {
		t.Fatalf("encrypt after a key change: %v, want ErrNoDevices and an IdentityChangedError", err)
	}
	if changed.New != bm2.Fingerprint() || changed.Old != bm.Fingerprint() {
		t.Fatalf("reported change %s → %s, want %s → %s", changed.Old, changed.New, bm.Fingerprint(), bm2.Fingerprint())
	}
	devs := am.Devices(bob.jid.String())
	if len(devs) != 1 || devs[0].Fingerprint() != bm.Fingerprint() || Fingerprint(devs[0].Changed) != bm2.Fingerprint() {
		t.Fatalf("alice's record of bob: %+v", devs)
	}
	// The user verifies the new key: it is used from then on.
	if _, err := am.Verify(bob.jid.String(), strings.ToUpper(bm2.Fingerprint())); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, am, bm2, bob.jid, alice.jid)
}

// TestBTBV: new devices are trusted blindly until one of the account's
// devices is verified; after that a new device is undecided.
func TestBTBV(t *testing.T) {
	srv := prosody.Get(t)
	alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
	am, bm := alice.open(t, "omemo.json"), bob.open(t, "omemo.json")
	roundTrip(t, am, bm, bob.jid, alice.jid)
	if d := am.Devices(bob.jid.String()); len(d) != 1 || d[0].Trust != TrustBlind {
		t.Fatalf("bob's first device: %+v, want blind trust", d)
	}
	if _, err := am.Verify(bob.jid.String(), bm.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	bm2 := bob.open(t, "second.json") // a second device of bob
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := am.Encrypt(ctx, bob.jid, make([]byte, 16), make([]byte, 12))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Header.Keys) != 1 || e.Header.Keys[0].RID != bm.DeviceID() {
		t.Fatalf("encrypted for %+v, want only the verified device %d", e.Header.Keys, bm.DeviceID())
	}
	found := false
	for _, d := range am.Devices(bob.jid.String()) {
		if d.ID == bm2.DeviceID() {
			found = true
			if d.Trust != TrustUndecided {
				t.Fatalf("bob's new device is %s, want undecided", d.Trust)
			}
		}
	}
	if !found {
		t.Fatal("bob's new device is not in alice's list")
	}
	// Distrusting the verified device leaves nothing.
	if _, err := am.Distrust(bob.jid.String(), bm.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	if _, err := am.Encrypt(ctx, bob.jid, make([]byte, 16), make([]byte, 12)); !errors.Is(err, ErrNoDevices) || !errors.Is(err, ErrUntrusted) {
		t.Fatalf("encrypt with no trusted device: %v", err)
	}
}
