package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// newFTPartyOn logs a new account in to srv with the file-transfer
// application and both ICE dialects configured by cfg.
func newFTPartyOn(t *testing.T, srv *prosodytest.Server, name string, cfg ice.Config) (*ftParty, jid.JID) {
	t.Helper()
	bare, pass := srv.NewUser(t, name)
	addr := jid.MustParse(bare + "/jinglekit")
	p := &ftParty{m: &jingle.Manager{Logger: testLogger(t)}, dir: t.TempDir(), results: make(chan filetransfer.Result, 4)}
	p.m.RegisterApplication(&filetransfer.Handler{
		Dir: p.dir, Policy: filetransfer.AcceptAll,
		Done:   func(r filetransfer.Result) { p.results <- r },
		Logger: testLogger(t),
	})
	p.m.RegisterTransport(&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg})
	p.m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343, Config: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: addr, Password: pass, Server: srv.C2SAddr, CAFile: srv.CAFile,
		Handler: mux.New(stanza.NSClient, p.m.Handler()),
	})
	if err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	p.m.SetStream(c.Session())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", addr, err)
		}
		_ = c.Close()
	})
	return p, addr
}

// TestRelayOnlyFileTransfer sends a file (1 MiB; 256 MiB with
// JINGLEKIT_BIG=1) with filetransfer between two clients of a real
// Prosody that offer relayed candidates only, through a real coturn, with
// the TURN credentials discovered through XEP-0215; the receiver verifies
// the hash and the file is byte-identical.
func TestRelayOnlyFileTransfer(t *testing.T) {
	srv, _ := integration(t)
	size := 1 << 20
	if os.Getenv("JINGLEKIT_BIG") == "1" {
		size = 256 << 20
	}
	for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
		t.Run(ns, func(t *testing.T) {
			cfg := ice.Config{RelayOnly: true, RelayTransports: []string{"udp"}, Discovery: &ice.Discovery{}, DisableIPv6: true, Logger: testLogger(t)}
			alice, _ := newFTPartyOn(t, srv, "alice", cfg)
			bob, bobJID := newFTPartyOn(t, srv, "bob", cfg)
			data := randomBytes(t, size)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			sender := &filetransfer.Sender{Transports: []string{ns}, Logger: testLogger(t)}
			res, err := sender.Send(ctx, alice.m, bobJID, filetransfer.BytesSource("relayed.bin", data))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res) != 1 || !res[0].Verified || res[0].Transport != ns {
				t.Fatalf("sender's result: %+v", res)
			}
			var r filetransfer.Result
			select {
			case r = <-bob.results:
			case <-ctx.Done():
				t.Fatal("no result at the receiver")
			}
			if r.Err != nil || !r.Verified || r.Transport != ns {
				t.Fatalf("receiver's result: %+v", r)
			}
			f, err := os.Open(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(data)
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("the received file differs")
			}
		})
	}
}
