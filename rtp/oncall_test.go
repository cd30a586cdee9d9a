package rtp_test

import (
	"context"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestOnCallFollowsCall: an OnCall that follows its call until it ends
// (as jinglectl answer does) does not hold up the end of the call: it ends
// within 2 s of the caller's hang-up, and OnCall returns.
func TestOnCallFollowsCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bobCalls := make(chan *rtp.Call, 1)
	returned := make(chan time.Time, 1)
	bob := newParty(t, n, xmpptest.Bob, func(p *party) {
		p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
			defer func() { returned <- time.Now() }()
			if err := c.Accept(ctx, rtp.Options{ReceiveAudio: true}); err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			bobCalls <- c
			<-c.Done()
		}
	})
	alice := newParty(t, n, xmpptest.Alice, nil)
	src := oggSource(t, testmedia.AliceOgg())
	c, err := alice.h.Place(ctx, bob.addr, rtp.Options{Audio: src})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c, rtp.EventConnected)
	bc := <-bobCalls
	hangUp := time.Now()
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob's call did not end within 5 s of the hang-up")
	}
	if d := time.Since(hangUp); d > 2*time.Second {
		t.Fatalf("bob's call ended %s after the hang-up, want at most 2s", d)
	}
	select {
	case at := <-returned:
		if d := at.Sub(hangUp); d > 2*time.Second {
			t.Fatalf("OnCall returned %s after the hang-up", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnCall did not return")
	}
	<-c.Done()
}
