package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// omemoStart switches OMEMO 0.3 on in a Libervia profile toward peer (a
// bare JID): without it Libervia 0.9 neither encrypts nor decrypts JET.
func (h *lvHarness) omemoStart(t *testing.T, profile, peer string) {
	t.Helper()
	h.mustRun(t, nil, "bash", "-c", fmt.Sprintf(`eval "$(./libervia-env %s)" && libervia-cli encryption start -p %s -n OLDMEMO %s`, profile, profile, peer))
}

// TestLiberviaEncrypted exchanges 10 MiB files encrypted end to end
// (XEP-0391 JET with XEP-0396 OMEMO 0.3) with a real Libervia 0.9, both
// directions, over S5B and over IBB: every file arrives byte-identical
// (Libervia decrypted ours; we decrypted and authenticated its), and both
// sides say the transfer was encrypted.
func TestLiberviaEncrypted(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import oldmemo, omemo, x3dh, doubleratchet, xeddsa").Run(); err != nil {
		msg := "libervia's OMEMO needs python3-oldmemo python3-omemo python3-twomemo python3-x3dh python3-doubleratchet python3-xeddsa"
		if os.Getenv(EnvRequireLibervia) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	h := startLibervia(t)
	const size = 10 << 20
	opts := peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}}
	carol := newPeerOn(t, &prosodytest.Server{Domain: "localhost", C2SAddr: "127.0.0.1:15222", CAFile: h.ca},
		"carol@localhost/jinglekit", "pass", opts)
	bob := jid.MustParse("bob@localhost/libervia")
	h.omemoStart(t, "bob", "carol@localhost")

	for _, tc := range []struct {
		name      string
		transport string
	}{{"s5b", socks5.NS}, {"ibb", ibb.NSTransport}} {
		t.Run("to-libervia-"+tc.name, func(t *testing.T) {
			path, sum := randomFile(t, "enc-to-lv-"+tc.name+".bin", size, 21)
			ready := filepath.Join(t.TempDir(), "ready")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			recv := h.command(ctx, []string{"READY_FILE=" + ready, "RECEIVE_TIMEOUT=150"}, "./receive-file", "bob", t.TempDir())
			var out lockedBuffer
			recv.Stdout, recv.Stderr = &out, &out
			if err := recv.Start(); err != nil {
				t.Fatal(err)
			}
			waitFile(t, ready, &out)
			src, err := filetransfer.FileSource(path)
			if err != nil {
				t.Fatal(err)
			}
			s := filetransfer.Sender{Transports: []string{tc.transport}, HashEncoding: filetransfer.HexBase64, Secure: secureWith(carol)}
			res, serr := s.Send(ctx, carol.m, bob, src)
			werr := recv.Wait()
			if serr != nil || werr != nil {
				t.Fatalf("send: %v; receive-file: %v\n%s", serr, werr, out.String())
			}
			m := receivedRE.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("receive-file did not report a file:\n%s", out.String())
			}
			if m[3] != sum || m[2] != fmt.Sprint(size) {
				t.Fatalf("libervia got size %s sha256 %s, want %d %s (it did not decrypt)", m[2], m[3], size, sum)
			}
			if m[4] != "yes" {
				t.Fatalf("libervia did not verify our checksum (hash_verified=%s)", m[4])
			}
			if res[0].Transport != tc.transport || !res[0].Encrypted {
				t.Fatalf("sent over %s, encrypted=%v; want %s, encrypted", res[0].Transport, res[0].Encrypted, tc.transport)
			}
		})
	}

	// S5B from bob's backend (already up, OMEMO on toward carol); IBB
	// from an alice forced to IBB (one backend start less: they are slow).
	for _, tc := range []struct {
		name      string
		transport string
		profile   string
		env       []string
	}{{"s5b", socks5.NS, "bob", nil}, {"ibb", ibb.NSTransport, "alice", []string{"LV_FORCE_IBB=1"}}} {
		t.Run("from-libervia-"+tc.name, func(t *testing.T) {
			if tc.profile == "alice" {
				h.run(t, nil, "./libervia-down", "alice")
				h.up(t, tc.env, "alice")
				h.omemoStart(t, "alice", "carol@localhost")
			}
			path, sum := randomFile(t, "enc-from-lv-"+tc.name+".bin", size, 22)
			out, err := h.run(t, []string{"SEND_TIMEOUT=150", "SEND_ENCRYPT=1"}, "./send-file", tc.profile, carol.jid.String(), path)
			if err != nil {
				t.Fatalf("send-file: %v\n%s", err, out)
			}
			r := carol.result(t)
			checkReceived(t, r, sum, size)
			if r.Transport != tc.transport || !r.Encrypted {
				t.Fatalf("received over %s, encrypted=%v; want %s, encrypted", r.Transport, r.Encrypted, tc.transport)
			}
		})
	}
}
