package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/liberviatest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// lvSize is the size of every file exchanged with Libervia.
const lvSize = 10 << 20

// lvTimeout bounds one transfer with Libervia.
const lvTimeout = 150 * time.Second

// startLibervia starts the Libervia harness (liberviatest) with bob's
// backend, and logs carol in as carol@localhost/jinglekit.
func startLibervia(t *testing.T) (*liberviatest.Harness, *peer) {
	t.Helper()
	h := liberviatest.Start(t, liberviatest.Options{})
	lvUp(t, h, "bob")
	opts := peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}}
	carol := newPeerOn(t, h.Server(), "carol@"+liberviatest.Domain+"/jinglekit", liberviatest.Password, opts)
	return h, carol
}

// lvUp (re)starts profile's backend with the knobs env.
func lvUp(t *testing.T, h *liberviatest.Harness, profile string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := h.Up(ctx, profile, env...); err != nil {
		t.Fatal(err)
	}
}

// sendToLibervia sends a random file from carol to bob's backend over
// transport, with the Sender's Secure hook secure (nil: plaintext), and
// checks that bob got it byte-identical and verified our checksum, and
// that it went over transport. It returns our result.
func sendToLibervia(t *testing.T, h *liberviatest.Harness, carol *peer, transport string, seed uint64,
	secure func(context.Context, jid.JID, string) (jingle.Element, jingle.Security, error)) filetransfer.Result {
	t.Helper()
	path, sum := randomFile(t, fmt.Sprintf("to-lv-%d.bin", seed), lvSize, seed)
	ctx, cancel := context.WithTimeout(context.Background(), lvTimeout+time.Minute)
	defer cancel()
	recv, err := h.Receive(ctx, "bob", t.TempDir(), liberviatest.ReceiveOptions{Timeout: lvTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Stop()
	src, err := filetransfer.FileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	s := filetransfer.Sender{Transports: []string{transport}, HashEncoding: filetransfer.HexBase64, Secure: secure}
	res, serr := s.Send(ctx, carol.m, jid.MustParse(liberviatest.JID("bob")), src)
	got, werr := recv.Wait(ctx)
	if serr != nil || werr != nil {
		t.Fatalf("send: %v; receive-file: %v\n%s", serr, werr, recv.Output())
	}
	if got.SHA256 != sum || got.Size != lvSize {
		t.Fatalf("libervia got size %d sha256 %s, want %d %s (it did not decrypt?)", got.Size, got.SHA256, lvSize, sum)
	}
	if !got.HashVerified {
		t.Fatal("libervia did not verify our checksum (hash_verified=no)")
	}
	if res[0].Transport != transport {
		t.Fatalf("sent over %s, want %s", res[0].Transport, transport)
	}
	return res[0]
}

// receiveFromLibervia has profile's backend send a random file to carol
// and checks that it arrived byte-identical over transport; it returns
// carol's result.
func receiveFromLibervia(t *testing.T, h *liberviatest.Harness, carol *peer, profile, transport string, seed uint64, encrypt bool) filetransfer.Result {
	t.Helper()
	path, sum := randomFile(t, fmt.Sprintf("from-lv-%d.bin", seed), lvSize, seed)
	ctx, cancel := context.WithTimeout(context.Background(), lvTimeout+time.Minute)
	defer cancel()
	if _, err := h.Send(ctx, profile, carol.jid.String(), path, liberviatest.SendOptions{Encrypt: encrypt, Timeout: lvTimeout}); err != nil {
		t.Fatal(err)
	}
	r := carol.result(t)
	checkReceived(t, r, sum, lvSize)
	if r.Transport != transport {
		t.Fatalf("received over %s, want %s", r.Transport, transport)
	}
	return r
}

// TestLibervia exchanges 10 MiB files with a real Libervia 0.9 in both
// directions over S5B and over IBB; every file must arrive byte-identical,
// and Libervia must have verified our checksum.
func TestLibervia(t *testing.T) {
	h, carol := startLibervia(t)
	for i, transport := range []string{socks5.NS, ibb.NSTransport} {
		t.Run("to-libervia-"+lvName(transport), func(t *testing.T) {
			sendToLibervia(t, h, carol, transport, uint64(11+10*i), nil)
		})
	}
	for i, tc := range []struct {
		transport string
		env       []string
	}{{socks5.NS, nil}, {ibb.NSTransport, []string{"LV_FORCE_IBB=1"}}} {
		t.Run("from-libervia-"+lvName(tc.transport), func(t *testing.T) {
			lvUp(t, h, "alice", tc.env...)
			receiveFromLibervia(t, h, carol, "alice", tc.transport, uint64(12+10*i), false)
		})
	}
}

// lvName names a transport in subtest names.
func lvName(transport string) string {
	if transport == ibb.NSTransport {
		return "ibb"
	}
	return "s5b"
}
