package rtp_test

import (
	"context"
	"encoding/xml"
	"errors"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// prosodyParty logs addr in to Prosody with an RTP handler and a JMI,
// enables carbons and sends presence.
func prosodyParty(t *testing.T, srv *prosodytest.Server, addr, pass string, setup func(*party)) *party {
	t.Helper()
	return serverParty(t, srv.C2SAddr, srv.CAFile, addr, pass, setup)
}

// serverParty logs addr in through the c2s listener at server, trusting
// the CA in caFile, like prosodyParty.
func serverParty(t *testing.T, server, caFile, addr, pass string, setup func(*party)) *party {
	t.Helper()
	p := &party{addr: jid.MustParse(addr), m: &jingle.Manager{}, h: &rtp.Handler{Config: loopback()}, jmi: &jmi.Manager{}}
	p.h.JMI = p.jmi
	if setup != nil {
		setup(p)
	}
	p.h.Register(p.m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{JID: p.addr, Password: pass, Server: server, CAFile: caFile,
		Handler: mux.New(stanza.NSClient, p.m.Handler(), p.jmi.Handler())})
	if err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	p.xs = c.Session()
	p.m.SetStream(p.xs)
	p.jmi.SetStream(p.xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.h.Close(ctx)
		_ = p.m.Close(ctx)
		_ = p.jmi.Close(ctx)
		_ = c.Close()
	})
	enable := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:carbons:2", Local: "enable"}})
	resp, err := p.xs.SendIQElement(ctx, enable, stanza.IQ{Type: stanza.SetIQ})
	if err != nil {
		t.Fatalf("enabling carbons: %v", err)
	}
	resp.Close()
	if err := c.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	// Prosody handles each stream in order but two streams in any order:
	// this round trip makes sure the presence was processed before a peer
	// proposes a call to the bare JID (else the proposal goes offline).
	if _, err := xmppclient.GetInfo(ctx, p.xs, p.addr.Domain(), ""); err != nil {
		t.Fatalf("disco#info of the server: %v", err)
	}
	return p
}

// TestProsodyJMICall is the acceptance run against a real Prosody with
// carbons: alice calls bob's bare JID; both of bob's devices ring; b2
// answers (proceed), and b1 stops ringing when the carbon of that proceed
// arrives; the session goes to b2 with the proposal id as sid; Opus flows
// both ways; alice hangs up; the recordings hold the other side's packets.
func TestProsodyJMICall(t *testing.T) {
	srv := prosody.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	aliceBare, alicePass := srv.NewUser(t, "alice")
	bobBare, bobPass := srv.NewUser(t, "bob")
	b1Props := make(chan *jmi.Incoming, 1)
	_ = prosodyParty(t, srv, bobBare+"/b1", bobPass, func(p *party) {
		p.jmi.OnPropose = func(ctx context.Context, in *jmi.Incoming) {
			_ = in.Ringing(ctx)
			b1Props <- in
		}
		p.h.OnCall = func(ctx context.Context, c *rtp.Call) { t.Errorf("b1 got the call") }
	})
	bobRec := rtp.NewRecorder(t.TempDir())
	bobCalls := make(chan *rtp.Call, 1)
	b2 := prosodyParty(t, srv, bobBare+"/b2", bobPass, func(p *party) {
		p.jmi.OnPropose = func(ctx context.Context, in *jmi.Incoming) {
			// Let b1 ring first.
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
			}
			if err := in.Proceed(ctx); err != nil {
				t.Error(err)
			}
		}
		p.h.OnCall = acceptOgg(t, bobRec, bobCalls)
	})
	alice := prosodyParty(t, srv, aliceBare+"/a", alicePass, nil)
	aliceRec := rtp.NewRecorder(t.TempDir())
	src := oggSource(t, testmedia.AliceOgg())
	c, err := alice.h.Place(ctx, jid.MustParse(bobBare), rtp.Options{Audio: src, OnTrack: aliceRec.OnTrack})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Peer().Equal(b2.addr) {
		t.Errorf("call placed to %s, want %s", c.Peer(), b2.addr)
	}
	waitEvent(t, ctx, c, rtp.EventConnected)
	bc := <-bobCalls
	select {
	case in := <-b1Props:
		select {
		case <-in.Done():
			if !errors.Is(in.Err(), jmi.ErrAnsweredElsewhere) {
				t.Errorf("b1's proposal ended with %v", in.Err())
			}
		case <-time.After(5 * time.Second):
			t.Error("b1 still rings")
		}
	case <-time.After(5 * time.Second):
		t.Error("b1 never rang")
	}
	time.Sleep(1500 * time.Millisecond)
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	<-bc.Done()
	for name, x := range map[string]struct {
		rec  *rtp.Recorder
		sent []byte
	}{"alice": {aliceRec, testmedia.BobOgg()}, "bob": {bobRec, testmedia.AliceOgg()}} {
		stats, err := x.rec.Wait()
		if err != nil || len(stats) != 1 {
			t.Fatalf("%s recorded %+v, %v", name, stats, err)
		}
		got := oggPackets(t, stats[0].Path)
		if m, _ := matchRun(t, got, sourcePackets(t, x.sent)); m < 50 {
			t.Errorf("%s: %d of %d recorded packets are the other side's", name, m, len(got))
		}
	}
}

// TestProsodyJMICallHoldMuteVideo runs the full call scenario of
// TestJMICallHoldMuteVideo between two accounts logged in to a real
// Prosody: JMI through the server's bare-JID message routing, Jingle IQs
// between full JIDs, session-info, content-add, content-modify and
// content-remove, media over loopback ICE.
func TestProsodyJMICallHoldMuteVideo(t *testing.T) {
	srv := prosody.Get(t)
	fullCall(t, func(t *testing.T, who string, setup func(*party)) *party {
		bare, pass := srv.NewUser(t, who)
		return prosodyParty(t, srv, bare+"/"+who[:1], pass, setup)
	})
}
