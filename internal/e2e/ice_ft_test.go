package e2e_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// ftParty is a jinglekit client with the file-transfer application and
// both ICE dialects.
type ftParty struct {
	m       *jingle.Manager
	dir     string
	results chan filetransfer.Result
}

func newFTParty(t *testing.T, n *xmpptest.Network, addr string, cfg ice.Config) *ftParty {
	t.Helper()
	p := &ftParty{m: &jingle.Manager{Logger: testLogger(t)}, dir: t.TempDir(), results: make(chan filetransfer.Result, 4)}
	p.m.RegisterApplication(&filetransfer.Handler{
		Dir:      p.dir,
		Policy:   filetransfer.AcceptAll,
		Done:     func(r filetransfer.Result) { p.results <- r },
		Timeouts: filetransfer.Timeouts{Checksum: 20 * time.Second, Verdict: 20 * time.Second, Idle: 20 * time.Second},
		Logger:   testLogger(t),
	})
	p.m.RegisterTransport(&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg})
	p.m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343, Config: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	xs, err := n.Client(ctx, jid.MustParse(addr), mux.New(stanza.NSClient, p.m.Handler()))
	if err != nil {
		t.Fatal(err)
	}
	p.m.SetStream(xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", addr, err)
		}
	})
	return p
}

// TestICEFileTransfer sends a 1 MiB file with filetransfer.Sender over each
// dialect; the receiver's Handler verifies the hash and writes the file.
func TestICEFileTransfer(t *testing.T) {
	for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
		t.Run(ns, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			alice := newFTParty(t, n, xmpptest.Alice, loopbackConfig(t))
			bob := newFTParty(t, n, xmpptest.Bob, loopbackConfig(t))
			data := randomBytes(t, 1<<20)
			sender := &filetransfer.Sender{Transports: []string{ns}, Logger: testLogger(t)}
			res, err := sender.Send(tctx(t), alice.m, jid.MustParse(xmpptest.Bob), filetransfer.BytesSource("random.bin", data))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res) != 1 || !res[0].Verified || res[0].Transport != ns || res[0].Bytes != int64(len(data)) {
				t.Fatalf("sender's result: %+v", res)
			}
			var r filetransfer.Result
			select {
			case r = <-bob.results:
			case <-tctx(t).Done():
				t.Fatal("no result at the receiver")
			}
			if r.Err != nil || !r.Verified || r.Transport != ns {
				t.Fatalf("receiver's result: %+v", r)
			}
			got, err := os.ReadFile(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("the received file differs")
			}
		})
	}
}
