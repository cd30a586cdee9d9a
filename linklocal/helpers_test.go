package linklocal_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// helperEnv names the helper a re-executed test binary runs (netns tests).
const helperEnv = "JINGLEKIT_LINKLOCAL_HELPER"

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("JINGLEKIT_LINKLOCAL_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// party is a Node with a jingle.Manager behind it: the test application
// with pipe transports, file transfer, and IBB.
type party struct {
	node *linklocal.Node
	m    *jingle.Manager
	app  *jingletest.App
	ft   *filetransfer.Handler
	ibb  *ibb.Method
	caps xmppclient.Caps
}

type partyOpts struct {
	name   string
	x      *jingletest.Exchange
	ftDir  string
	mdns   []string // interfaces; nil: NoMulticast
	accept bool     // AcceptUnadvertised
	limits linklocal.Limits
	onDone func(filetransfer.Result)
	// s5 registers SOCKS5 bytestreams (direct candidates only; loopback
	// allowed when s5Loopback) before IBB.
	s5         bool
	s5Loopback bool
	listen     string
}

// newParty starts a party; it is closed when the test ends.
func newParty(t testing.TB, o partyOpts) *party {
	t.Helper()
	p := &party{m: &jingle.Manager{Logger: testLogger(t)}, app: jingletest.NewApp(), ibb: &ibb.Method{}}
	p.ft = &filetransfer.Handler{Dir: o.ftDir, Policy: filetransfer.AcceptAll, Done: o.onDone, Logger: testLogger(t)}
	if o.ftDir == "" {
		p.ft.Policy = nil
	}
	p.m.RegisterApplication(p.app)
	p.m.RegisterApplication(p.ft)
	if o.x != nil {
		p.m.RegisterTransport(&jingletest.PipeMethod{X: o.x})
	}
	if o.s5 {
		p.m.RegisterTransport(socks5.NewMethod(socks5.Settings{AllowLoopback: o.s5Loopback, NoProxyDiscovery: true, Logger: testLogger(t)}))
	}
	p.m.RegisterTransport(p.ibb)
	p.caps = xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "pc", Name: "jinglekit test"}}, Features: p.m.Features()}
	p.node = &linklocal.Node{
		Name:               o.name,
		Nick:               "nick of " + o.name,
		Listen:             "127.0.0.1:0",
		NoMulticast:        o.mdns == nil,
		Interfaces:         o.mdns,
		AcceptUnadvertised: o.accept,
		Caps:               p.caps,
		Logger:             testLogger(t),
		Limits:             o.limits,
		Handler:            mux.New(stanza.NSClient, p.m.Handler(), p.ibb.Handler(), xmppclient.HandleDisco(p.caps)),
	}
	if o.mdns != nil {
		p.node.Listen = ":0"
		p.node.Limits.QueryInterval = time.Second
	}
	if o.listen != "" {
		p.node.Listen = o.listen
	}
	p.m.SetStream(p.node)
	if err := p.node.Start(tctx(t)); err != nil {
		t.Fatalf("starting %s: %v", o.name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing the manager of %s: %v", o.name, err)
		}
		if err := p.node.Close(); err != nil {
			t.Errorf("closing %s: %v", o.name, err)
		}
	})
	return p
}

func (p *party) jid() jid.JID { return p.node.LocalAddr() }

func (p *party) hostport() string { return p.node.Addr().String() }
