package rtp_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// wireCandidate is a candidate as seen on the wire, with the action that
// carried it and whether that action's description offered rtcp-mux.
type wireCandidate struct {
	action string
	attrs  map[string]string
}

// candidatesOf lists the ICE-UDP candidates of a stanza and says whether it
// carries <rtcp-mux/>.
func candidatesOf(t *testing.T, st []byte) (action string, cands []map[string]string, mux bool) {
	d := xml.NewDecoder(bytes.NewReader(st))
	for {
		tok, err := d.Token()
		if err != nil {
			return action, cands, mux
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name.Local == "jingle":
			for _, a := range se.Attr {
				if a.Name.Local == "action" {
					action = a.Value
				}
			}
		case se.Name.Local == "rtcp-mux" && se.Name.Space == rtp.NS:
			mux = true
		case se.Name.Local == "candidate" && se.Name.Space == ice.NSICEUDP:
			m := map[string]string{}
			for _, a := range se.Attr {
				m[a.Name.Local] = a.Value
			}
			cands = append(cands, m)
		}
	}
}

// TestWireCandidates: every RTP candidate sent, in the offer, the answer
// or trickled, has the id XEP-0176 requires, and with <rtcp-mux/> offered
// there is no component 2.
func TestWireCandidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	var mu sync.Mutex
	var seen []wireCandidate
	muxed := map[string]bool{}
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		action, cands, mux := candidatesOf(t, st)
		mu.Lock()
		defer mu.Unlock()
		if mux {
			muxed[action] = true
		}
		for _, c := range cands {
			seen = append(seen, wireCandidate{action: action, attrs: c})
		}
		return st
	})
	bobCalls := make(chan *rtp.Call, 1)
	bob := newParty(t, n, xmpptest.Bob, func(p *party) {
		p.h.OnCall = acceptOgg(t, nil, bobCalls)
	})
	alice := newParty(t, n, xmpptest.Alice, nil)
	src := oggSource(t, testmedia.AliceOgg())
	c, err := alice.h.Place(ctx, bob.addr, rtp.Options{Audio: src})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c, rtp.EventConnected)
	bc := <-bobCalls
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	<-bc.Done()
	mu.Lock()
	defer mu.Unlock()
	if !muxed["session-initiate"] || !muxed["session-accept"] {
		t.Fatalf("rtcp-mux offered in %v, want session-initiate and session-accept", muxed)
	}
	if len(seen) == 0 {
		t.Fatal("no candidate on the wire")
	}
	ids := map[string]bool{}
	for _, c := range seen {
		if c.attrs["id"] == "" {
			t.Errorf("%s: candidate without id: %v", c.action, c.attrs)
		}
		if ids[c.attrs["id"]] {
			t.Errorf("%s: candidate id %q used twice", c.action, c.attrs["id"])
		}
		ids[c.attrs["id"]] = true
		if c.attrs["component"] != "1" {
			t.Errorf("%s: component %q with rtcp-mux: %v", c.action, c.attrs["component"], c.attrs)
		}
	}
	t.Logf("%d candidates checked", len(seen))
}
