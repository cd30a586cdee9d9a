package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// noJMICallee logs a in (resource "old") as a client that takes Jingle
// audio calls but knows nothing of XEP-0353, as StanzaJS 12.22.1: it
// advertises no urn:xmpp:jingle-message:0 and drops <propose/>. It accepts
// every call (receiving only) and reports each on calls.
func noJMICallee(t *testing.T, srv *prosodytest.Server, a account, calls chan<- *rtp.Call) jid.JID {
	t.Helper()
	addr := jid.MustParse(a.jid + "/old")
	m := &jingle.Manager{}
	h := &rtp.Handler{Config: rtp.Config{IncludeLoopback: true}}
	h.OnCall = func(ctx context.Context, c *rtp.Call) {
		if err := c.Accept(ctx, rtp.Options{ReceiveAudio: true}); err != nil {
			t.Errorf("callee: accept: %v", err)
			return
		}
		calls <- c
	}
	if err := h.Register(m); err != nil {
		t.Fatal(err)
	}
	caps := xmppclient.Caps{Features: m.Features()}
	for _, f := range caps.Features {
		if strings.Contains(f, "jingle-message") {
			t.Fatalf("the callee advertises %s", f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: addr, Password: a.password, Server: srv.C2SAddr, CAFile: srv.CAFile,
		Handler: mux.New(stanza.NSClient, m.Handler(), xmppclient.HandleDisco(caps)), Caps: caps,
	})
	if err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	m.SetStream(c.Session())
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Close(cctx)
		_ = m.Close(cctx)
		_ = c.Close()
	})
	if err := c.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	return c.LocalAddr()
}

// TestCallBareJIDFallback: a call to the bare JID of a contact whose only
// device does not support XEP-0353 goes directly to that device and
// connects; a contact with no device online, or none that takes calls,
// fails at once with exit status 5 or 6 instead of waiting out the set-up.
func TestCallBareJIDFallback(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob, carol, dave := newAccount(t, srv, "alice"), newAccount(t, srv, "bob"), newAccount(t, srv, "carol"), newAccount(t, srv, "dave")
	subscribe(t, srv, alice, bob, carol, dave)

	calls := make(chan *rtp.Call, 1)
	full := noJMICallee(t, srv, bob, calls)
	start := time.Now()
	r := c.run(60*time.Second, alice, append([]string{"call"}, append(c.accountArgs(alice, "desk"),
		"--json", "--allow-loopback", "--seconds", "1", bob.jid)...)...)
	if r.code != exitOK {
		t.Fatalf("call to the bare JID of a device without XEP-0353: %s", r)
	}
	t.Logf("call took %s", time.Since(start))
	evs := parseCallEvents(t, r.stdout)
	if _, ok := findEvent(evs, "connected"); !ok {
		t.Fatalf("never connected: %v", eventNames(evs))
	}
	if e, _ := findEvent(evs, "accepted"); e.Peer != full.String() {
		t.Errorf("accepted by %q, want %s", e.Peer, full)
	}
	select {
	case bc := <-calls:
		if bc.JMIIncoming() != nil {
			t.Error("the callee saw a XEP-0353 call")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the callee got no call")
	}

	// carol is offline: exit 5 at once (after the presence wait), not
	// after the 60 s set-up.
	start = time.Now()
	r = c.run(60*time.Second, alice, append([]string{"call"}, append(c.accountArgs(alice, "desk2"),
		"--json", "--allow-loopback", carol.jid)...)...)
	if r.code != exitOffline {
		t.Fatalf("call to an offline contact: want exit %d, got %s", exitOffline, r)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the call to an offline contact failed after %s", d)
	}

	// dave is online with a client that takes no calls: exit 6 at once.
	testPeer(t, srv, dave, nil)
	start = time.Now()
	r = c.run(60*time.Second, alice, append([]string{"call"}, append(c.accountArgs(alice, "desk3"),
		"--json", "--allow-loopback", dave.jid)...)...)
	if r.code != exitUnsupported {
		t.Fatalf("call to a contact without call support: want exit %d, got %s", exitUnsupported, r)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the call to a contact without call support failed after %s", d)
	}
}
