package jingle_test

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// prosodySide logs a new account in to the shared Prosody and wires a
// Manager on it.
func prosodySide(t *testing.T, srv *prosodytest.Server, name string, x *jingletest.Exchange) *side {
	t.Helper()
	bare, pass := srv.NewUser(t, name)
	addr := bare + "/jinglekit"
	return wireSide(t, addr, x, jingle.Limits{}, func(h xmpp.Handler) *xmpp.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := xmppclient.Dial(ctx, xmppclient.Config{
			JID: jid.MustParse(addr), Password: pass,
			Server: srv.C2SAddr, CAFile: srv.CAFile, Handler: h,
		})
		if err != nil {
			t.Fatalf("login %s: %v", addr, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.Session()
	})
}

// TestProsodySession runs the whole session life cycle, then a declined
// session, between two clients logged in to a real Prosody.
func TestProsodySession(t *testing.T) {
	srv := prosody.Get(t)
	x := jingletest.NewExchange()
	alice := prosodySide(t, srv, "alice", x)
	bob := prosodySide(t, srv, "bob", x)
	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, alice, bob) })
	t.Run("declined", func(t *testing.T) { declined(t, alice, bob) })
}
