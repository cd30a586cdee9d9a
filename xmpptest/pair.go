package xmpptest

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Addresses used by NewPair.
const (
	Domain = "example.net"
	Alice  = "alice@example.net/a"
	Bob    = "bob@example.net/b"
)

// NewNetwork returns a Network for Domain that is closed on t.Cleanup and
// reports unexpected errors with t.Logf.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	n := New(Domain)
	n.SetLogf(t.Logf)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// NewPair connects Alice (served by ha) and Bob (served by hb) to a new
// Network that is closed on t.Cleanup. It fails the test on error.
func NewPair(t testing.TB, ha, hb xmpp.Handler) (alice, bob *xmpp.Session) {
	t.Helper()
	n := NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := n.Client(ctx, jid.MustParse(Alice), ha)
	if err != nil {
		t.Fatal(err)
	}
	bob, err = n.Client(ctx, jid.MustParse(Bob), hb)
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob
}
