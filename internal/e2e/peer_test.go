package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/jet"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/omemo"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// peer is one logged-in client with a Jingle manager, both transports and
// a file-transfer handler receiving into its own directory.
type peer struct {
	jid     jid.JID
	c       *xmppclient.Client
	m       *jingle.Manager
	h       *filetransfer.Handler
	s5b     *socks5.Method
	ibb     *ibb.Method
	jet     *jet.Method
	omemo   *omemo.Manager
	dir     string
	results chan filetransfer.Result
}

type peerOpts struct {
	s5b        socks5.Settings
	ibbBlock   int                                                 // IBB block size to offer; 0 is the default
	transport  func(jingle.TransportMethod) jingle.TransportMethod // wraps the S5B method, if set
	wrapAll    func(jingle.TransportMethod) jingle.TransportMethod // wraps every method, if set
	omemoState string                                              // OMEMO state file; "" for one in a temp dir
	ice        *ice.Config                                         // replaces the loopback-only ICE config, if set
}

func newPeer(t *testing.T, srv *prosodytest.Server, name string, o peerOpts) *peer {
	t.Helper()
	bare, pass := srv.NewUser(t, name)
	return newPeerOn(t, srv, bare+"/e2e", pass, o)
}

// newPeerOn logs in as addr (a full JID) on srv.
func newPeerOn(t *testing.T, srv *prosodytest.Server, addr, pass string, o peerOpts) *peer {
	t.Helper()
	return newPeerAt(t, srv.C2SAddr, srv.CAFile, addr, pass, o)
}

// newPeerAt logs in as addr (a full JID) through the c2s listener at
// server, trusting the CA in caFile.
func newPeerAt(t *testing.T, server, caFile, addr, pass string, o peerOpts) *peer {
	t.Helper()
	p := &peer{
		jid:     jid.MustParse(addr),
		m:       &jingle.Manager{},
		dir:     t.TempDir(),
		results: make(chan filetransfer.Result, 64),
	}
	o.s5b.AllowLoopback = true
	p.s5b = socks5.NewMethod(o.s5b)
	// As jinglectl's agent does: IBB payloads past the stream's XML
	// decoder and encoder (ibb.Payloads, the Dial filters below).
	p.ibb = &ibb.Method{BlockSize: o.ibbBlock, Payloads: ibb.NewPayloads()}
	p.h = &filetransfer.Handler{
		Dir:    p.dir,
		Policy: filetransfer.AcceptAll,
		Done:   func(r filetransfer.Result) { p.results <- r },
	}
	p.m.RegisterApplication(p.h)
	var s5 jingle.TransportMethod = p.s5b
	if o.transport != nil {
		s5 = o.transport(s5)
	}
	wrap := func(tm jingle.TransportMethod) jingle.TransportMethod {
		if o.wrapAll != nil {
			return o.wrapAll(tm)
		}
		return tm
	}
	p.m.RegisterTransport(wrap(s5))
	p.m.RegisterTransport(wrap(p.ibb))
	// ICE, both data-channel dialects, on loopback host candidates only.
	iceCfg := ice.Config{IncludeLoopback: true, IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}
	if o.ice != nil {
		iceCfg = *o.ice
	}
	p.m.RegisterTransport(wrap(&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: iceCfg}))
	p.m.RegisterTransport(wrap(&ice.Method{Dialect: ice.DialectXEP0343, Config: iceCfg}))
	p.jet = &jet.Method{}
	p.m.RegisterSecurity(p.jet)
	caps := xmppclient.Caps{Features: p.m.Features()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: p.jid, Password: pass, Server: server, CAFile: caFile, Caps: caps,
		ReadFilter: p.ibb.Payloads.Filter, WriteFilter: p.ibb.Payloads.WriteFilter,
		Handler: mux.New(stanza.NSClient, p.m.Handler(), p.ibb.Handler(), xmppclient.HandleDisco(caps)),
	})
	if err != nil {
		t.Fatalf("login %s: %v", p.jid, err)
	}
	p.c = c
	p.m.SetStream(c.Session())
	state := o.omemoState
	if state == "" {
		state = filepath.Join(t.TempDir(), "omemo.json")
	}
	om, err := omemo.Open(state, c.Session(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := om.Publish(ctx); err != nil {
		t.Fatalf("%s: publishing the OMEMO device: %v", p.jid, err)
	}
	p.omemo = om
	p.jet.Envelopes = []jet.Envelope{&omemo.Envelope{OMEMO: om}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing %s's manager: %v", p.jid, err)
		}
		_ = c.Close()
	})
	return p
}

// result waits for the outcome of the next file the peer received.
func (p *peer) result(t *testing.T) filetransfer.Result {
	t.Helper()
	select {
	case r := <-p.results:
		return r
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s received nothing", p.jid)
		return filetransfer.Result{}
	}
}

// randomFile writes size pseudo-random bytes and returns the path and the
// hex sha-256.
func randomFile(t *testing.T, name string, size int64, seed uint64) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		for i := int64(0); i < n; i += 8 {
			v := r.Uint64()
			for k := int64(0); k < 8 && i+k < n; k++ {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
		left -= n
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkReceived checks a received file: verified, at its final name (no
// .part), byte-identical.
func checkReceived(t *testing.T, r filetransfer.Result, wantSum string, size int64) {
	t.Helper()
	if r.Err != nil || !r.Verified {
		t.Fatalf("received %q: verified=%v err=%v", r.Name, r.Verified, r.Err)
	}
	if filepath.Ext(r.Path) == ".part" {
		t.Fatalf("received file left as %s", r.Path)
	}
	st, err := os.Stat(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Fatalf("%s has %d bytes, want %d", r.Path, st.Size(), size)
	}
	if got := fileSHA256(t, r.Path); got != wantSum {
		t.Fatalf("%s: sha-256 %s, want %s", r.Path, got, wantSum)
	}
	if _, err := os.Stat(r.Path + ".part"); !os.IsNotExist(err) {
		t.Fatalf("%s.part still exists (%v)", r.Path, err)
	}
}
