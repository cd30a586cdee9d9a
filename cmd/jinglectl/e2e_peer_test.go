package main

import (
	"context"
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

// testPeer logs a in (resource "peer") inside the test: with app set, a
// Jingle Manager with IBB and SOCKS5 and app as the only application;
// without, a client that advertises no Jingle at all. It sends presence.
func testPeer(t *testing.T, srv *prosodytest.Server, a account, app jingle.Application) jid.JID {
	t.Helper()
	addr := jid.MustParse(a.jid + "/peer")
	var opts []mux.Option
	var features []string
	m := &jingle.Manager{}
	if app != nil {
		ibbm := &ibb.Method{}
		m.RegisterApplication(app)
		m.RegisterTransport(socks5.NewMethod(socks5.Settings{AllowLoopback: true}))
		m.RegisterTransport(ibbm)
		features = append(m.Features(), filetransfer.HashFeatures()...)
		opts = append(opts, m.Handler(), ibbm.Handler())
	}
	caps := xmppclient.Caps{Features: features}
	opts = append(opts, xmppclient.HandleDisco(caps))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: addr, Password: a.password, Server: srv.C2SAddr, CAFile: srv.CAFile,
		Handler: mux.New(stanza.NSClient, opts...), Caps: caps,
	})
	if err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	if app != nil {
		m.SetStream(c.Session())
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Close(cctx)
		_ = c.Close()
	})
	if err := c.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	return c.LocalAddr()
}

// terminatingApp answers every session with a session-terminate of the
// given reason once it was accepted (media-error: what a receiver whose
// hash check failed sends) or, with accept false, never answers at all.
type terminatingApp struct {
	reason jingle.ReasonCondition
	accept bool
}

func (a *terminatingApp) Namespaces() []string { return filetransfer.Namespaces() }

func (a *terminatingApp) HandleSession(ctx context.Context, s *jingle.Session) {
	if _, err := s.NextEvent(ctx); err != nil {
		return
	}
	if !a.accept {
		<-ctx.Done() // never answer: the sender times out
		return
	}
	descs := map[string]jingle.Element{}
	for _, c := range s.Contents() {
		descs[c.Name] = *c.Description
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Accept(actx, descs); err != nil {
		return
	}
	// Take the data, then claim it did not verify.
	for _, c := range s.Contents() {
		conn, err := s.Conn(actx, c.Name)
		if err != nil {
			return
		}
		buf := make([]byte, 32<<10)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		}
	}
	_ = s.Terminate(actx, jingle.Reason{Condition: a.reason, Text: "hash mismatch"})
}
