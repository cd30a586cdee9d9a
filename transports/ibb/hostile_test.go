package ibb_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// A hostile step: a stanza sent to bob, whose IBB transport negotiated sid
// "s1" with mallory, and the answer it must get.
type step struct {
	// by is who sends: "mallory" and "eve" send through their own
	// streams (the router stamps from); "forged" is injected by the
	// test with from='eve@example.net/e' written by hand; "msg" and
	// "msg-eve" send a message carrying the payload.
	by      string
	payload string
	// want is the answer's error condition, "" for a result; messages
	// get no answer.
	want stanza.Condition
}

// Outcomes after the steps.
const (
	unopened = "unopened" // the stream is still waiting for its <open/>
	usable   = "usable"   // open and intact: the next chunk is taken
	broken   = "broken"   // bob's reader gets ErrBroken and mallory a <close/>
)

func open(bs any) string {
	return fmt.Sprintf(`<open xmlns='http://jabber.org/protocol/ibb' block-size='%v' sid='s1' stanza='iq'/>`, bs)
}

func data(seq any, sid, payload string) string {
	return fmt.Sprintf(`<data xmlns='http://jabber.org/protocol/ibb' seq='%v' sid='%s'>%s</data>`, seq, sid, payload)
}

func closeEl(sid string) string {
	return fmt.Sprintf(`<close xmlns='http://jabber.org/protocol/ibb' sid='%s'/>`, sid)
}

var (
	legitOpen = step{"mallory", open(4096), ""}
	hi        = "aGk=" // "hi"
)

func TestHostile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		after string
		// next is the seq of the chunk that must be taken next when the
		// stream is usable; read is what bob must read before the end.
		next int
		read string
	}{
		{"open block-size 70000", []step{{"mallory", open(70000), stanza.ResourceConstraint}}, unopened, 0, ""},
		{"open above negotiated", []step{{"mallory", open(4097), stanza.ResourceConstraint}}, unopened, 0, ""},
		{"open block-size zero", []step{{"mallory", open(0), stanza.BadRequest}}, unopened, 0, ""},
		{"open block-size negative", []step{{"mallory", open(-1), stanza.BadRequest}}, unopened, 0, ""},
		{"open block-size text", []step{{"mallory", open("lots"), stanza.BadRequest}}, unopened, 0, ""},
		{"open block-size huge", []step{{"mallory", open("99999999999999999999"), stanza.BadRequest}}, unopened, 0, ""},
		{"open without block-size", []step{{"mallory", `<open xmlns='http://jabber.org/protocol/ibb' sid='s1'/>`, stanza.BadRequest}}, unopened, 0, ""},
		{"open bad stanza", []step{{"mallory", `<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s1' stanza='pigeon'/>`, stanza.BadRequest}}, unopened, 0, ""},
		{"open unknown sid", []step{{"mallory", `<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s2'/>`, stanza.NotAcceptable}}, unopened, 0, ""},
		{"open without sid", []step{{"mallory", `<open xmlns='http://jabber.org/protocol/ibb' block-size='4096'/>`, stanza.NotAcceptable}}, unopened, 0, ""},
		{"open by a third party", []step{{"eve", open(4096), stanza.NotAcceptable}}, unopened, 0, ""},
		{"open forged from a third party", []step{{"forged", open(4096), stanza.NotAcceptable}}, unopened, 0, ""},
		{"duplicate open", []step{legitOpen, {"mallory", open(4096), stanza.NotAcceptable}}, usable, 0, ""},
		{"duplicate open after data", []step{legitOpen, {"mallory", data(0, "s1", hi), ""}, {"mallory", open(1024), stanza.NotAcceptable}}, usable, 1, "hi"},
		{"data before open", []step{{"mallory", data(0, "s1", hi), stanza.ItemNotFound}}, unopened, 0, ""},
		{"data unknown sid", []step{legitOpen, {"mallory", data(0, "s2", hi), stanza.ItemNotFound}}, usable, 0, ""},
		{"data by a third party", []step{legitOpen, {"eve", data(0, "s1", hi), stanza.ItemNotFound}}, usable, 0, ""},
		{"data forged from a third party", []step{legitOpen, {"forged", data(0, "s1", hi), stanza.ItemNotFound}}, usable, 0, ""},
		{"data out of order", []step{legitOpen, {"mallory", data(1, "s1", hi), stanza.UnexpectedRequest}}, broken, 0, ""},
		{"data seq repeated", []step{legitOpen, {"mallory", data(0, "s1", hi), ""}, {"mallory", data(0, "s1", hi), stanza.UnexpectedRequest}}, broken, 0, "hi"},
		{"data seq wrapped early", []step{legitOpen, {"mallory", data(65535, "s1", hi), stanza.UnexpectedRequest}}, broken, 0, ""},
		{"data seq text", []step{legitOpen, {"mallory", data("one", "s1", hi), stanza.BadRequest}}, broken, 0, ""},
		{"data seq above 16 bits", []step{legitOpen, {"mallory", data(65536, "s1", hi), stanza.BadRequest}}, broken, 0, ""},
		{"data without seq", []step{legitOpen, {"mallory", `<data xmlns='http://jabber.org/protocol/ibb' sid='s1'>aGk=</data>`, stanza.BadRequest}}, broken, 0, ""},
		{"bad base64 character", []step{legitOpen, {"mallory", data(0, "s1", "!!!!"), stanza.BadRequest}}, broken, 0, ""},
		{"base64 pad first", []step{legitOpen, {"mallory", data(0, "s1", "=AAA"), stanza.BadRequest}}, broken, 0, ""},
		{"base64 pad inside", []step{legitOpen, {"mallory", data(0, "s1", "AAA=AAAA"), stanza.BadRequest}}, broken, 0, ""},
		{"base64 without padding", []step{legitOpen, {"mallory", data(0, "s1", "aGVsbG8"), stanza.BadRequest}}, broken, 0, ""},
		{"data with a child", []step{legitOpen, {"mallory", data(0, "s1", "aGk=<x/>"), stanza.BadRequest}}, broken, 0, ""},
		{"data one byte too big", []step{
			{"mallory", open(16), ""},
			{"mallory", data(0, "s1", "AAAAAAAAAAAAAAAAAAAAAA=="), ""},                // 16 bytes
			{"mallory", data(1, "s1", "AAAAAAAAAAAAAAAAAAAAAAA="), stanza.BadRequest}, // 17 bytes
		}, broken, 0, strings.Repeat("\x00", 16)},
		{"data far too big", []step{legitOpen, {"mallory", data(0, "s1", strings.Repeat("AAAA", 300_000)), stanza.BadRequest}}, broken, 0, ""},
		{"empty data", []step{legitOpen, {"mallory", data(0, "s1", ""), ""}}, usable, 1, ""},
		{"close unknown sid", []step{legitOpen, {"mallory", closeEl("s2"), stanza.ItemNotFound}}, usable, 0, ""},
		{"close by a third party", []step{legitOpen, {"eve", closeEl("s1"), stanza.ItemNotFound}}, usable, 0, ""},
		{"close forged from a third party", []step{legitOpen, {"forged", closeEl("s1"), stanza.ItemNotFound}}, usable, 0, ""},
		{"close before open", []step{{"mallory", closeEl("s1"), stanza.ItemNotFound}}, unopened, 0, ""},
		{"unknown ibb element", []step{legitOpen, {"mallory", `<frob xmlns='http://jabber.org/protocol/ibb' sid='s1'/>`, stanza.ServiceUnavailable}}, usable, 0, ""},
		{"message data", []step{legitOpen, {"msg", data(0, "s1", hi), ""}}, usable, 1, "hi"},
		{"message data white space", []step{legitOpen, {"msg", data(0, "s1", "\n  aG\n  k=\n"), ""}}, usable, 1, "hi"},
		{"message data by a third party", []step{legitOpen, {"msg-eve", data(0, "s1", hi), ""}}, usable, 0, ""},
		{"message with two data", []step{legitOpen, {"msg", data(0, "s1", hi) + data(1, "s1", hi), ""}}, usable, 0, ""},
		{"message data out of order", []step{legitOpen, {"msg", data(3, "s1", hi), ""}}, broken, 0, ""},
		{"message bad base64", []step{legitOpen, {"msg", data(0, "s1", "a*k="), ""}}, broken, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostile(t)
			for i, st := range tc.steps {
				if got := h.send(t, st); got != st.want {
					t.Fatalf("step %d (%s %s): answer %q, want %q", i, st.by, abbrev(st.payload), got, st.want)
				}
			}
			h.check(t, tc.after, tc.next, tc.read)
		})
	}
}

// hostile is bob with an IBB transport negotiated with mallory, plus eve.
type hostile struct {
	n        *xmpptest.Network
	bob, mal *peer
	eve      *peer
	tr       jingle.StreamTransport

	mu       sync.Mutex
	toEve    []string
	eveWoken chan struct{}
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{n: xmpptest.NewNetwork(t), eveWoken: make(chan struct{}, 16)}
	h.bob = newPeer(t, h.n, xmpptest.Bob, &ibb.Method{HoldTimeout: 100 * time.Millisecond})
	h.mal = newPeer(t, h.n, mallory, nil)
	h.eve = newPeer(t, h.n, eve, nil)
	offer := jingle.MustElement(ibb.Transport{BlockSize: 4096, SID: "s1"})
	h.tr = transportFor(t, h.bob, h.mal.addr, &offer)
	h.n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if from.Equal(h.bob.addr) && to.Equal(h.eve.addr) {
			h.mu.Lock()
			h.toEve = append(h.toEve, string(st))
			h.mu.Unlock()
			select {
			case h.eveWoken <- struct{}{}:
			default:
			}
		}
		return st
	})
	return h
}

var conditionRE = regexp.MustCompile(`<([a-z-]+) xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"`)

func (h *hostile) send(t *testing.T, st step) stanza.Condition {
	t.Helper()
	switch st.by {
	case "mallory":
		return sendRaw(t, h.mal, h.bob.addr, st.payload)
	case "eve":
		return sendRaw(t, h.eve, h.bob.addr, st.payload)
	case "forged":
		raw := `<iq xmlns='jabber:client' type='set' id='forged1' from='eve@example.net/e' to='bob@example.net/b'>` + st.payload + `</iq>`
		if err := h.n.Inject(tctx(t), h.bob.addr, raw); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.eveWoken:
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to the forged stanza")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		last := h.toEve[len(h.toEve)-1]
		if !strings.Contains(last, `id="forged1"`) {
			t.Fatalf("unexpected stanza to eve: %s", last)
		}
		if m := conditionRE.FindStringSubmatch(last); m != nil {
			return stanza.Condition(m[1])
		}
		return ""
	case "msg", "msg-eve":
		p := h.mal
		if st.by == "msg-eve" {
			p = h.eve
		}
		raw := `<message xmlns='jabber:client' to='bob@example.net/b' id='m1'>` + st.payload + `</message>`
		var el jingle.Element
		if err := xml.Unmarshal([]byte(raw), &el); err != nil {
			t.Fatal(err)
		}
		if err := p.xs.Send(tctx(t), el.TokenReader()); err != nil {
			t.Fatal(err)
		}
		// Messages get no answer; a ping makes sure bob handled it.
		sendRaw(t, p, h.bob.addr, `<ping xmlns='urn:xmpp:ping'/>`)
		return ""
	}
	t.Fatalf("unknown sender %q", st.by)
	return ""
}

func (h *hostile) check(t *testing.T, after string, next int, read string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch after {
	case unopened:
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := h.tr.Dial(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial: %v; the stream should still wait for its open", err)
		}
		if got := sendRaw(t, h.mal, h.bob.addr, open(4096)); got != "" {
			t.Fatalf("the legitimate open afterwards: %s", got)
		}
		fallthrough
	case usable:
		if got := sendRaw(t, h.mal, h.bob.addr, data(next, "s1", "b2s=")); got != "" {
			t.Fatalf("next chunk %d: %s", next, got)
		}
		c, err := h.tr.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := readN(t, c, len(read)+2); string(got) != read+"ok" {
			t.Fatalf("bob read %q, want %q", got, read+"ok")
		}
		if h.bob.m.Streams() != 1 {
			t.Fatalf("bob has %d streams", h.bob.m.Streams())
		}
	case broken:
		c, err := h.tr.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if !errors.Is(err, ibb.ErrBroken) || string(got) != read {
			t.Fatalf("bob read %q then %v; want %q then ErrBroken", got, err, read)
		}
		h.mal.rec.waitFor(t, "iq close s1")
		if h.bob.m.Streams() != 0 {
			t.Fatalf("bob still has %d streams", h.bob.m.Streams())
		}
		if got := sendRaw(t, h.mal, h.bob.addr, data(0, "s1", hi)); got != stanza.ItemNotFound {
			t.Fatalf("data after the break: %q, want item-not-found", got)
		}
	}
	// No <close/> went to mallory unless the stream broke, and nothing at
	// all to eve but answers.
	if after != broken {
		for _, g := range h.mal.rec.list() {
			if strings.HasPrefix(g, "iq close") {
				t.Fatalf("bob sent %s", g)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.toEve {
		if !strings.Contains(s, `type="error"`) {
			t.Fatalf("bob sent eve %s", abbrev(s))
		}
	}
}

func abbrev(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// TestOpenSentAfterAnswer: the proposing side sends <open/> only once the
// answer has arrived, with the negotiated block size; if the peer opens
// first (crossing, or a peer that ties the open to another role), that
// open is taken and no second one is sent.
func TestOpenSentAfterAnswer(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	bob := newPeer(t, n, xmpptest.Bob, &ibb.Method{BlockSize: 4096})
	mal := newPeer(t, n, mallory, nil)
	var mu sync.Mutex
	var opens []string
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if from.Equal(bob.addr) && strings.Contains(string(st), "<open") {
			mu.Lock()
			opens = append(opens, string(st))
			mu.Unlock()
		}
		return st
	})
	ctx := tctx(t)

	// Normal order.
	tr := transportFor(t, bob, mal.addr, nil)
	var o ibb.Transport
	if err := tr.Local().Decode(&o); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if len(mal.rec.list()) != 0 {
		t.Fatalf("bob sent %v before the answer", mal.rec.list())
	}
	if err := tr.SetRemote(ctx, jingle.MustElement(ibb.Transport{BlockSize: 1024, SID: o.SID})); err != nil {
		t.Fatal(err)
	}
	c, err := tr.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mal.rec.waitFor(t, "iq open "+o.SID)
	mu.Lock()
	if len(opens) != 1 || !strings.Contains(opens[0], `block-size="1024"`) || !strings.Contains(opens[0], `stanza="iq"`) {
		t.Fatalf("opens sent: %q", opens)
	}
	opens = nil
	mu.Unlock()
	if c.(*ibb.Conn).BlockSize() != 1024 {
		t.Fatalf("block size %d", c.(*ibb.Conn).BlockSize())
	}

	// The peer opens first, before the answer.
	tr2 := transportFor(t, bob, mal.addr, nil)
	var o2 ibb.Transport
	if err := tr2.Local().Decode(&o2); err != nil {
		t.Fatal(err)
	}
	peerOpen := fmt.Sprintf(`<open xmlns='http://jabber.org/protocol/ibb' block-size='2048' sid='%s'/>`, o2.SID)
	if got := sendRaw(t, mal, bob.addr, peerOpen); got != "" {
		t.Fatalf("peer's open: %q", got)
	}
	if err := tr2.SetRemote(ctx, jingle.MustElement(ibb.Transport{BlockSize: 4096, SID: o2.SID})); err != nil {
		t.Fatal(err)
	}
	c2, err := tr2.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := sendRaw(t, mal, bob.addr, data(0, o2.SID, hi)); got != "" {
		t.Fatalf("data: %q", got)
	}
	if got := readN(t, c2, 2); string(got) != "hi" {
		t.Fatalf("read %q", got)
	}
	if c2.(*ibb.Conn).BlockSize() != 2048 {
		t.Fatalf("block size %d, want the peer's 2048", c2.(*ibb.Conn).BlockSize())
	}
	if got := sendRaw(t, mal, bob.addr, peerOpen); got != stanza.NotAcceptable {
		t.Fatalf("second open: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(opens) != 0 {
		t.Fatalf("bob opened although the peer had: %q", opens)
	}
}
