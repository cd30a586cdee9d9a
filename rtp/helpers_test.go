package rtp_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// loopback is the call configuration of the tests: host candidates on the
// loopback interface only.
func loopback() rtp.Config {
	return rtp.Config{
		IncludeLoopback: true,
		DisableIPv6:     true,
		InterfaceFilter: func(name string) bool { return name == "lo" },
		GatherWait:      500 * time.Millisecond,
		ConnectTimeout:  10 * time.Second,
	}
}

// party is one account of a test: its XMPP session, Jingle manager, RTP
// handler and JMI.
type party struct {
	addr jid.JID
	xs   *xmpp.Session
	m    *jingle.Manager
	h    *rtp.Handler
	jmi  *jmi.Manager
}

// newParty connects addr to n with an RTP handler; setup may set the
// handler's and JMI's fields before anything runs.
func newParty(t testing.TB, n *xmpptest.Network, addr string, setup func(*party)) *party {
	t.Helper()
	p := &party{
		addr: jid.MustParse(addr),
		m:    &jingle.Manager{},
		h:    &rtp.Handler{Config: loopback()},
		jmi:  &jmi.Manager{},
	}
	p.h.JMI = p.jmi
	if setup != nil {
		setup(p)
	}
	p.h.Register(p.m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	xs, err := n.Client(ctx, p.addr, mux.New(stanza.NSClient, p.m.Handler(), p.jmi.Handler()))
	if err != nil {
		t.Fatal(err)
	}
	p.xs = xs
	p.m.SetStream(xs)
	p.jmi.SetStream(xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.h.Close(ctx); err != nil {
			t.Errorf("closing handler of %s: %v", addr, err)
		}
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", addr, err)
		}
		if err := p.jmi.Close(ctx); err != nil {
			t.Errorf("closing JMI of %s: %v", addr, err)
		}
	})
	return p
}

// waitEvent reads call events until one of kind arrives.
func waitEvent(t testing.TB, ctx context.Context, c *rtp.Call, kind rtp.EventKind) rtp.Event {
	t.Helper()
	for {
		ev, err := c.NextEvent(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", kind, err)
		}
		if ev.Kind == kind {
			return ev
		}
		if ev.Kind == rtp.EventEnded {
			t.Fatalf("call ended (%v) while waiting for %s", ev.Reason, kind)
		}
	}
}

// oggSource plays data, Ogg/Opus test audio of internal/testmedia. It
// fails t if data does not parse.
func oggSource(t testing.TB, data []byte) *rtp.FileSource {
	t.Helper()
	src, err := rtp.NewOggSource(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// acceptOgg returns an OnCall that answers each call with Bob's test
// audio, records what it receives with rec (when not nil), and hands the
// call to calls.
func acceptOgg(t testing.TB, rec *rtp.Recorder, calls chan<- *rtp.Call) func(context.Context, *rtp.Call) {
	return func(ctx context.Context, c *rtp.Call) {
		src, err := rtp.NewOggSource(bytes.NewReader(testmedia.BobOgg()))
		if err != nil {
			t.Error(err) // not Fatal: OnCall runs in the handler's goroutine
			return
		}
		opts := rtp.Options{Audio: src}
		if rec != nil {
			opts.OnTrack = rec.OnTrack
		}
		if err := c.Accept(ctx, opts); err != nil {
			t.Errorf("accept: %v", err)
		}
		calls <- c
	}
}
