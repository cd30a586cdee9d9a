// Package exampletest is the other end of the example programs' tests: a
// sender and a receiver of files built from the library, logged in to a
// test Prosody (internal/prosodytest).
package exampletest

import (
	"context"
	"errors"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Account is a new account of srv, with its client configuration.
func Account(t testing.TB, srv *prosodytest.Server, prefix, resource string) xmppclient.Config {
	t.Helper()
	bare, pass := srv.NewUser(t, prefix)
	return xmppclient.Config{JID: jid.MustParse(bare + "/" + resource), Password: pass,
		Server: srv.C2SAddr, CAFile: srv.CAFile}
}

// Peer is a logged-in client with the file-transfer application, SOCKS5
// (loopback allowed) and IBB. It logs out when the test ends.
type Peer struct {
	M       *jingle.Manager
	Addr    jid.JID
	Results chan filetransfer.Result
}

// NewPeer logs cfg's account in; files are accepted from accept (bare
// JIDs) into dir.
func NewPeer(t testing.TB, cfg xmppclient.Config, dir string, accept ...jid.JID) *Peer {
	t.Helper()
	p := &Peer{M: &jingle.Manager{}, Results: make(chan filetransfer.Result, 8)}
	h := &filetransfer.Handler{Dir: dir, Policy: filetransfer.AcceptFrom(accept...),
		Done: func(r filetransfer.Result) { p.Results <- r }}
	ibbm := &ibb.Method{}
	if err := errors.Join(p.M.RegisterApplication(h),
		p.M.RegisterTransport(socks5.NewMethod(socks5.Settings{AllowLoopback: true, NoProxyDiscovery: true})),
		p.M.RegisterTransport(ibbm)); err != nil {
		t.Fatal(err)
	}
	cfg.Handler = mux.New(stanza.NSClient, p.M.Handler(), ibbm.Handler())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("login %s: %v", cfg.JID, err)
	}
	p.Addr = c.LocalAddr()
	p.M.SetStream(c.Session())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.M.Close(ctx)
		_ = c.Close()
	})
	return p
}
