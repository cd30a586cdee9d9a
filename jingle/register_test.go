package jingle_test

import (
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

const ownAppNS = "urn:jinglekit:test:app:own:0"

// ownApp is a test application that makes its own pipe transports, of the
// namespace of the Manager-wide pipe method (as RTP makes its own ICE-UDP).
type ownApp struct {
	*jingletest.App
	own *jingletest.PipeMethod
}

func (a *ownApp) Namespaces() []string { return []string{ownAppNS} }

func (a *ownApp) TransportMethods() []jingle.TransportMethod {
	return []jingle.TransportMethod{a.own}
}

func ownDesc() jingle.Element {
	return jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:jinglekit:test:app:own:0 description"`
	}{})
}

// TestRegisterDuplicate: a namespace registered twice is an error, and the
// first registration stays.
func TestRegisterDuplicate(t *testing.T) {
	m := &jingle.Manager{}
	if err := m.RegisterApplication(jingletest.NewApp()); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterApplication(jingletest.NewApp()); !errors.Is(err, jingle.ErrDuplicate) {
		t.Errorf("second application of %s: %v", jingletest.AppNS, err)
	}
	if err := m.RegisterTransport(&jingletest.PipeMethod{}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterTransport(&jingletest.PipeMethod{}); !errors.Is(err, jingle.ErrDuplicate) {
		t.Errorf("second transport of %s: %v", jingletest.PipeNS, err)
	}
	if got := m.Transports(); !slices.Equal(got, []string{jingletest.PipeNS}) {
		t.Errorf("transports %v", got)
	}
	twice := &ownApp{App: jingletest.NewApp(), own: &jingletest.PipeMethod{}}
	// An application's own methods share the namespace of a registered
	// one without error.
	if err := m.RegisterApplication(twice); err != nil {
		t.Errorf("application with its own pipe method: %v", err)
	}
	if f := m.Features(); !slices.Contains(f, ownAppNS) || !slices.Contains(f, jingletest.PipeNS) {
		t.Errorf("features %v", f)
	}
}

// TestApplicationTransports: a content of an application that makes its
// own method of a namespace gets a transport from it, on both sides; a
// content of another application gets the Manager-wide method.
func TestApplicationTransports(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	type party struct {
		m      *jingle.Manager
		app    *jingletest.App
		own    *ownApp
		shared *jingletest.PipeMethod
	}
	mk := func(addr string) *party {
		p := &party{m: &jingle.Manager{}, app: jingletest.NewApp(), shared: &jingletest.PipeMethod{X: x}}
		p.own = &ownApp{App: jingletest.NewApp(), own: &jingletest.PipeMethod{X: x}}
		for _, err := range []error{p.m.RegisterApplication(p.app), p.m.RegisterApplication(p.own), p.m.RegisterTransport(p.shared)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		xs, err := n.Client(tctx(t), jid.MustParse(addr), mux.New(stanza.NSClient, p.m.Handler()))
		if err != nil {
			t.Fatal(err)
		}
		p.m.SetStream(xs)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = p.m.Close(ctx)
		})
		return p
	}
	alice, bob := mk(xmpptest.Alice), mk(xmpptest.Bob)
	count := func(p *party) (own, shared int) { return len(p.own.own.Transports()), len(p.shared.Transports()) }

	if _, err := alice.m.Initiate(tctx(t), jid.MustParse(xmpptest.Bob), jingle.Offer{Name: "o", Description: ownDesc()}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-bob.own.Sessions:
		nextEvent(t, s, jingle.ActionSessionInitiate)
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming session for the application with its own method")
	}
	for name, p := range map[string]*party{"alice": alice, "bob": bob} {
		if own, shared := count(p); own != 1 || shared != 0 {
			t.Errorf("%s: %d own and %d shared transports after a content of the own application, want 1 and 0", name, own, shared)
		}
	}

	if _, err := alice.m.Initiate(tctx(t), jid.MustParse(xmpptest.Bob), offer("p")); err != nil {
		t.Fatal(err)
	}
	incoming(t, &side{app: bob.app})
	for name, p := range map[string]*party{"alice": alice, "bob": bob} {
		if own, shared := count(p); own != 1 || shared != 1 {
			t.Errorf("%s: %d own and %d shared transports after a content of the other application, want 1 and 1", name, own, shared)
		}
	}
}
