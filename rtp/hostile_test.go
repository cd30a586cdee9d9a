package rtp_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// capture records the <jingle/> actions bob sends to alice.
type capture struct {
	mu  sync.Mutex
	got []string
}

func (c *capture) filter(from, to jid.JID, st []byte) []byte {
	if from.String() == xmpptest.Bob && strings.Contains(string(st), "urn:xmpp:jingle:1") {
		c.mu.Lock()
		c.got = append(c.got, string(st))
		c.mu.Unlock()
	}
	return st
}

func (c *capture) wait(t *testing.T, substr ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, s := range c.got {
			all := true
			for _, x := range substr {
				all = all && strings.Contains(s, x)
			}
			if all {
				c.mu.Unlock()
				return s
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("bob sent no stanza with %q; sent:\n%s", substr, strings.Join(c.got, "\n"))
	return ""
}

const offerTemplate = `<iq xmlns='jabber:client' type='set' id='%ID%' from='alice@example.net/a' to='bob@example.net/b'>
<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='alice@example.net/a' sid='%SID%'>
<content creator='initiator' name='0'>
<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='111' name='opus' clockrate='48000' channels='2'/><rtcp-mux/></description>
<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='abcd' pwd='0123456789abcdefghijkl'>%FP%
<candidate component='1' foundation='1' generation='0' id='c1' ip='127.0.0.1' network='0' port='9' priority='2130706431' protocol='udp' type='host'/>
</transport></content></jingle></iq>`

// TestRefusedOffers: bob's handler refuses offers it must not take, with
// the reason XEP-0167/XEP-0320 call for, and never asks the user.
func TestRefusedOffers(t *testing.T) {
	for _, c := range []struct {
		name, fp string
		want     []string
	}{
		{"no fingerprint", "", []string{"session-terminate", "<security-error", "crypto-required"}},
		{"empty fingerprint", "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'> </fingerprint>", []string{"session-terminate", "<security-error", "invalid-crypto"}},
		{"bad setup", "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='holdconn'>AB:CD</fingerprint>", []string{"session-terminate", "<security-error", "invalid-crypto"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n := xmpptest.NewNetwork(t)
			var asked sync.WaitGroup
			_ = newParty(t, n, xmpptest.Bob, func(p *party) {
				p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
					asked.Add(1)
					defer asked.Done()
					t.Errorf("OnCall for a refused offer")
				}
			})
			// alice is a plain client that only records.
			_ = newParty(t, n, xmpptest.Alice, nil)
			var cp capture
			n.SetFilter(cp.filter)
			raw := strings.NewReplacer("%ID%", "i1", "%SID%", "s1", "%FP%", c.fp).Replace(offerTemplate)
			if err := n.Inject(ctx, jid.MustParse(xmpptest.Bob), raw); err != nil {
				t.Fatal(err)
			}
			cp.wait(t, c.want...)
			asked.Wait()
		})
	}
}

// TestNoOnCallIsBusy: without OnCall, every call is declined with busy.
func TestNoOnCallIsBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newParty(t, n, xmpptest.Bob, nil)
	alice := newParty(t, n, xmpptest.Alice, nil)
	c, err := alice.h.Place(ctx, bob.addr, rtp.Options{ReceiveAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, ctx, c, rtp.EventEnded)
	if ev.Reason == nil || ev.Reason.Condition != jingle.ReasonBusy {
		t.Errorf("ended with %v", ev.Reason)
	}
}

// TestRejectAndRinging: the callee rings (session-info) and rejects; the
// caller sees ringing, then the end with decline.
func TestRejectAndRinging(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newParty(t, n, xmpptest.Bob, func(p *party) {
		p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
			if c.State() != rtp.StateRinging {
				t.Errorf("incoming call in state %s", c.State())
			}
			if m := c.Media(); len(m.Contents) != 1 || m.Contents[0].Description.Media != rtp.MediaAudio {
				t.Errorf("offer %+v", m)
			}
			time.Sleep(50 * time.Millisecond)
			if err := c.Reject(ctx, nil); err != nil {
				t.Error(err)
			}
		}
	})
	alice := newParty(t, n, xmpptest.Alice, nil)
	c, err := alice.h.Place(ctx, bob.addr, rtp.Options{ReceiveAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c, rtp.EventRinging)
	ev := waitEvent(t, ctx, c, rtp.EventEnded)
	if ev.Reason == nil || ev.Reason.Condition != jingle.ReasonDecline {
		t.Errorf("ended with %v", ev.Reason)
	}
	<-c.Done()
	if c.State() != rtp.StateEnded {
		t.Errorf("state %s", c.State())
	}
}

// TestJMIRetractOnTimeout: a call to a bare JID nobody answers is
// retracted when Place's context ends, and the callee's proposal ends.
func TestJMIRetractOnTimeout(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	proposals := make(chan *jmi.Incoming, 1)
	bob := newParty(t, n, xmpptest.Bob, func(p *party) {
		p.jmi.OnPropose = func(ctx context.Context, in *jmi.Incoming) { proposals <- in }
	})
	alice := newParty(t, n, xmpptest.Alice, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := alice.h.Place(ctx, bob.addr.Bare(), rtp.Options{ReceiveAudio: true}); err == nil {
		t.Fatal("Place succeeded without an answer")
	}
	in := <-proposals
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("proposal not retracted")
	}
}
