package jingletest_test

import (
	"context"
	"testing"

	"mellium.im/xmpp"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// In a test, each side is a Manager joined to an in-memory network: Join
// closes it when the test ends, and fails the test if that fails. A
// transport method that answers stanzas of its own (IBB's) adds its
// handler next to the Manager's.
func ExampleJoin() {
	var t *testing.T // the test's
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	join := func(addr string, app *jingletest.App) (*jingle.Manager, *xmpp.Session) {
		m := &jingle.Manager{}
		if err := m.RegisterApplication(app); err != nil {
			t.Fatal(err)
		}
		if err := m.RegisterTransport(&jingletest.PipeMethod{X: x}); err != nil {
			t.Fatal(err)
		}
		xs := jingletest.Join(t, n, addr, mux.New(stanza.NSClient, m.Handler()), m)
		m.SetStream(xs)
		return m, xs
	}
	alice, _ := join(xmpptest.Alice, jingletest.NewApp())
	bobApp := jingletest.NewApp()
	_, bob := join(xmpptest.Bob, bobApp)
	a, b, err := jingletest.Streams(context.Background(), alice, bob.LocalAddr(), bobApp, "c", jingletest.PipeNS)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a, b // alice's and bob's ends of the content's stream
}
