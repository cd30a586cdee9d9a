package main

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/exampletest"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/internal/testserver"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

var prosody prosodytest.Lazy

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &prosody)) }

func loopback() rtp.Config {
	return rtp.Config{IncludeLoopback: true, DisableIPv6: true, InterfaceFilter: func(name string) bool { return name == "lo" },
		GatherWait: 500 * time.Millisecond, ConnectTimeout: 10 * time.Second}
}

// TestCallbot: a caller on a real Prosody proposes a call to the bot's
// bare JID (XEP-0353), plays audio, and gets RTP back from the bot.
func TestCallbot(t *testing.T) {
	srv := prosody.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bot := exampletest.Account(t, srv, "echo", "bot")
	ready := make(chan struct{})
	done := make(chan error, 1)
	botCtx, stopBot := context.WithCancel(ctx)
	go func() { done <- echoCalls(botCtx, bot, loopback(), func() { close(ready) }) }()
	defer func() {
		stopBot()
		<-done
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("echoCalls: %v", err)
	}

	caller := exampletest.Account(t, srv, "alice", "phone")
	m := &jingle.Manager{}
	proposals := &jmi.Manager{}
	h := &rtp.Handler{Config: loopback(), JMI: proposals}
	if err := h.Register(m); err != nil {
		t.Fatal(err)
	}
	caller.Handler = mux.New(stanza.NSClient, m.Handler(), proposals.Handler())
	cl, err := xmppclient.Dial(ctx, caller)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m.SetStream(cl.Session())
	proposals.SetStream(cl.Session())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Close(ctx)
		_ = m.Close(ctx)
		_ = proposals.Close(ctx)
	}()

	src, err := rtp.NewOggSource(bytes.NewReader(testmedia.AliceOgg()))
	if err != nil {
		t.Fatal(err)
	}
	var echoed atomic.Int32
	got := make(chan struct{})
	c, err := h.Place(ctx, bot.JID.Bare(), rtp.Options{Audio: src, OnTrack: func(_ *rtp.Call, _ string, tr *webrtc.TrackRemote) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			if echoed.Add(1) == 25 {
				close(got)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-c.Done():
		t.Fatalf("call ended: %v", c.Reason())
	case <-ctx.Done():
		t.Fatalf("%d RTP packets echoed before the deadline", echoed.Load())
	}
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
}
