package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// memPeer is a peer on the in-memory network with the sink application
// and IBB (which needs nothing but the XMPP stream).
func memPeer(t *testing.T, n *xmpptest.Network, addr string) *peer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &peer{jid: jid.MustParse(addr), m: &jingle.Manager{Logger: log}, sink: &sinkApp{log: log}}
	m := &ibb.Method{Logger: log}
	p.m.RegisterApplication(p.sink)
	p.m.RegisterTransport(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := n.Client(ctx, p.jid, mux.New(stanza.NSClient, p.m.Handler(), m.Handler()))
	if err != nil {
		t.Fatal(err)
	}
	p.m.SetStream(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing %s: %v", addr, err)
		}
	})
	return p
}

// TestSinkStream sends streams of several sizes through the sink
// application over IBB on the in-memory network: the responder must read
// exactly the announced bytes and both digests must match.
func TestSinkStream(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	alice := memPeer(t, n, xmpptest.Alice)
	bob := memPeer(t, n, xmpptest.Bob)
	p := NewPattern(3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, size := range []int64{1, 4096, 100_000, 1 << 20} {
		r, err := sendStream(ctx, alice, bob, ibb.NSTransport, p, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if r.Received.Bytes != size || r.Elapsed <= 0 || r.Received.FirstByte.Before(r.Start) {
			t.Fatalf("size %d: %+v", size, r)
		}
	}
}

// TestSinkRefusesBadDescription offers the sink a negative size: the
// responder refuses it, and the initiator's session ends.
func TestSinkRefusesBadDescription(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	alice := memPeer(t, n, xmpptest.Alice)
	bob := memPeer(t, n, xmpptest.Bob)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	el, err := jingle.NewElement(sinkDesc{Size: -5})
	if err != nil {
		t.Fatal(err)
	}
	s, err := alice.m.Initiate(ctx, bob.jid, jingle.Offer{Name: sinkContent, Senders: jingle.SendersInitiator,
		Description: el, Transports: []string{ibb.NSTransport}})
	if err != nil {
		t.Fatal(err)
	}
	got := bob.sink.expect(s.SID())
	select {
	case r := <-got:
		if r.Err == nil || !strings.Contains(r.Err.Error(), "bad description") {
			t.Errorf("responder's result: %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("the responder reported nothing")
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("the session did not end")
	}
	if _, err := s.NextEvent(ctx); !errors.Is(err, jingle.ErrEnded) {
		// Events before the end (none expected but a terminate) are fine.
		for err == nil {
			_, err = s.NextEvent(ctx)
		}
		if !errors.Is(err, jingle.ErrEnded) {
			t.Errorf("NextEvent after the end: %v", err)
		}
	}
}
