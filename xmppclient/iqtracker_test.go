package xmppclient

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/goroutines"
	"github.com/jinglekit/jinglekit/internal/testwait"
	"github.com/jinglekit/jinglekit/xmpptest"
)

const nsTrackerTest = "urn:jinglekit:test:tracker"

// trackerPair connects alice, whose IQs go through an IQTracker, and bob,
// who answers <q xmlns='urn:jinglekit:test:tracker' answer='…'/> with an
// error (answer='error') or a result; results to IQs whose id starts with
// "drop-" are lost on the way. Stanzas alice's tracker does not take reach
// unmatched.
func trackerPair(t *testing.T) (n *xmpptest.Network, tr *IQTracker, unmatched chan string) {
	t.Helper()
	n = xmpptest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unmatched = make(chan string, 8)
	rest := mux.New(stanza.NSClient, mux.IQFunc(stanza.ResultIQ, xml.Name{}, func(iq stanza.IQ, _ xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
		unmatched <- iq.ID
		return nil
	}))
	tr = &IQTracker{}
	alice, err := n.Client(ctx, jid.MustParse(xmpptest.Alice), tr.Handler(rest))
	if err != nil {
		t.Fatal(err)
	}
	tr.SetSession(alice)
	t.Cleanup(func() { tr.Close(nil) })
	answer := mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsTrackerTest, Local: "q"}, func(iq stanza.IQ, w xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		a := ""
		for _, at := range start.Attr {
			if at.Name.Local == "answer" {
				a = at.Value
			}
		}
		switch a {
		case "error":
			_, err := xmlstream.Copy(w, iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented}))
			return err
		}
		_, err := xmlstream.Copy(w, iq.Result(nil))
		return err
	})
	if _, err := n.Client(ctx, jid.MustParse(xmpptest.Bob), mux.New(stanza.NSClient, answer)); err != nil {
		t.Fatal(err)
	}
	// Answers to IQs whose id starts with "drop-" are lost.
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
		if bytes.Contains(raw, []byte(`id="drop-`)) && bytes.Contains(raw, []byte(`type="result"`)) {
			return nil
		}
		return raw
	})
	return n, tr, unmatched
}

func query(answer string) xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsTrackerTest, Local: "q"}, Attr: []xml.Attr{{Name: xml.Name{Local: "answer"}, Value: answer}}})
}

type answered struct {
	typ string
	err error
	at  time.Time
}

// collect returns an answer function that records the answer's type.
func collect() (func(xml.TokenReader, error), chan answered) {
	ch := make(chan answered, 1)
	return func(r xml.TokenReader, err error) {
		a := answered{err: err, at: time.Now()}
		if err == nil {
			tok, terr := r.Token()
			if st, ok := tok.(xml.StartElement); ok && terr == nil {
				for _, at := range st.Attr {
					if at.Name.Local == "type" {
						a.typ = at.Value
					}
				}
			}
		}
		ch <- a
	}, ch
}

func waitAnswer(t *testing.T, ch chan answered) answered {
	t.Helper()
	return testwait.Recv(t, ch, 10*time.Second, "the answer function's call")
}

func TestIQTrackerAnswers(t *testing.T) {
	_, tr, _ := trackerPair(t)
	ctx := context.Background()
	bob := jid.MustParse(xmpptest.Bob)

	f, ch := collect()
	if err := tr.SendIQFunc(ctx, query("result"), stanza.IQ{To: bob, Type: stanza.SetIQ}, 5*time.Second, f); err != nil {
		t.Fatal(err)
	}
	if a := waitAnswer(t, ch); a.err != nil || a.typ != "result" {
		t.Errorf("got %+v, want the result", a)
	}

	f, ch = collect()
	if err := tr.SendIQFunc(ctx, query("error"), stanza.IQ{To: bob, Type: stanza.SetIQ}, 5*time.Second, f); err != nil {
		t.Fatal(err)
	}
	if a := waitAnswer(t, ch); a.err != nil || a.typ != "error" {
		t.Errorf("got %+v, want the error answer", a)
	}

	if err := tr.SendIQFunc(ctx, query("result"), stanza.IQ{To: bob, Type: stanza.ResultIQ}, time.Second, f); err == nil {
		t.Error("SendIQFunc took an IQ result")
	}
}

// TestIQTrackerTimeout checks that the wait for an answer that never comes
// is bounded by wait, with no goroutine waiting meanwhile.
func TestIQTrackerTimeout(t *testing.T) {
	_, tr, _ := trackerPair(t)
	f, ch := collect()
	start := time.Now()
	err := tr.SendIQFunc(context.Background(), query("none"), stanza.IQ{ID: "drop-1", To: jid.MustParse(xmpptest.Bob), Type: stanza.SetIQ}, 300*time.Millisecond, f)
	if err != nil {
		t.Fatal(err)
	}
	if n := goroutines.In(goroutines.IQWaiter); n != 0 {
		t.Errorf("%d goroutines wait for IQ answers", n)
	}
	a := waitAnswer(t, ch)
	if !errors.Is(a.err, ErrNoAnswer) || !errors.Is(a.err, context.DeadlineExceeded) {
		t.Errorf("got %v, want ErrNoAnswer", a.err)
	}
	if d := a.at.Sub(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("answered after %v, want about 300ms", d)
	}
}

// TestIQTrackerClose checks that closing the tracker (its stream ended)
// fails the IQs in flight at once and refuses new ones.
func TestIQTrackerClose(t *testing.T) {
	_, tr, _ := trackerPair(t)
	f, ch := collect()
	bob := jid.MustParse(xmpptest.Bob)
	if err := tr.SendIQFunc(context.Background(), query("none"), stanza.IQ{ID: "drop-2", To: bob, Type: stanza.SetIQ}, time.Minute, f); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("test cause")
	tr.Close(cause)
	a := waitAnswer(t, ch)
	if !errors.Is(a.err, ErrStreamEnded) || !errors.Is(a.err, cause) {
		t.Errorf("got %v, want ErrStreamEnded and the cause", a.err)
	}
	if err := tr.SendIQFunc(context.Background(), query("result"), stanza.IQ{To: bob, Type: stanza.SetIQ}, time.Second, f); !errors.Is(err, ErrStreamEnded) {
		t.Errorf("SendIQFunc after Close: %v, want ErrStreamEnded", err)
	}
}

// TestIQTrackerSpoofedAnswer checks that an answer with the id of an IQ in
// flight but from someone else than its addressee is not taken for the
// answer: it goes to the session's handler, and the IQ still waits.
func TestIQTrackerSpoofedAnswer(t *testing.T) {
	n, tr, unmatched := trackerPair(t)
	f, ch := collect()
	if err := tr.SendIQFunc(context.Background(), query("none"), stanza.IQ{ID: "drop-3", To: jid.MustParse(xmpptest.Bob), Type: stanza.SetIQ}, 500*time.Millisecond, f); err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`<iq type="result" id="drop-3" from="mallory@example.net/m" to="%s"/>`, xmpptest.Alice)
	if err := n.Inject(context.Background(), jid.MustParse(xmpptest.Alice), raw); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-unmatched:
		if id != "drop-3" {
			t.Errorf("handler got %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the spoofed answer did not reach the handler")
	}
	if a := waitAnswer(t, ch); !errors.Is(a.err, ErrNoAnswer) {
		t.Errorf("got %+v, want ErrNoAnswer: the spoofed answer must not count", a)
	}
}

// TestClientSendIQFunc checks a Client's tracker: the answer to an IQ to
// the server comes to its function (bob, the server here, with no
// handler, answers service-unavailable and no from), and once the stream has ended SendIQFunc fails
// with ErrStreamEnded.
func TestClientSendIQFunc(t *testing.T) {
	sa, sb := peerSessions(t, aliceJID, bobJID)
	wait := servePeer(t, sb, nil)
	c := New(sa, nil)
	f, ch := collect()
	if err := c.SendIQFunc(context.Background(), query("result"), stanza.IQ{Type: stanza.GetIQ}, 5*time.Second, f); err != nil {
		t.Fatal(err)
	}
	if a := waitAnswer(t, ch); a.err != nil || a.typ != "error" {
		t.Errorf("got %+v, want bob's error answer", a)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	err := c.SendIQFunc(context.Background(), query("result"), stanza.IQ{To: bobJID, Type: stanza.GetIQ}, time.Second, f)
	if !errors.Is(err, ErrStreamEnded) || !errors.Is(err, ErrDisconnected) {
		t.Errorf("SendIQFunc after the stream ended: %v, want ErrStreamEnded wrapping ErrDisconnected", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := wait(); err != nil {
		t.Errorf("peer's Serve: %v", err)
	}
}

// TestIQTrackerAnswerTo: which stanzas answerTo takes for an IQ in flight
// (id "q1", to bob): a result or an error from bob with the IQ's id, in
// the client namespace or none. A from that is not a JID (mellium's
// stanza.NewIQ would refuse the stanza), a missing or other id, another
// type or another sender leaves the IQ waiting.
func TestIQTrackerAnswerTo(t *testing.T) {
	bob := jid.MustParse(xmpptest.Bob)
	for _, tc := range []struct {
		name  string
		space string
		attrs [][2]string
		take  bool
	}{
		{"result", stanza.NSClient, [][2]string{{"type", "result"}, {"id", "q1"}, {"from", xmpptest.Bob}}, true},
		{"error", stanza.NSClient, [][2]string{{"type", "error"}, {"id", "q1"}, {"from", xmpptest.Bob}}, true},
		{"no namespace", "", [][2]string{{"id", "q1"}, {"from", xmpptest.Bob}, {"type", "result"}}, true},
		{"bad from", stanza.NSClient, [][2]string{{"type", "result"}, {"id", "q1"}, {"from", "bob@@example.net"}}, false},
		{"empty from", stanza.NSClient, [][2]string{{"type", "result"}, {"id", "q1"}}, false},
		{"other from", stanza.NSClient, [][2]string{{"type", "result"}, {"id", "q1"}, {"from", xmpptest.Alice}}, false},
		{"no id", stanza.NSClient, [][2]string{{"type", "result"}, {"from", xmpptest.Bob}}, false},
		{"other id", stanza.NSClient, [][2]string{{"type", "result"}, {"id", "q2"}, {"from", xmpptest.Bob}}, false},
		{"no type", stanza.NSClient, [][2]string{{"id", "q1"}, {"from", xmpptest.Bob}}, false},
		{"set", stanza.NSClient, [][2]string{{"type", "set"}, {"id", "q1"}, {"from", xmpptest.Bob}}, false},
		{"other namespace", "jabber:server", [][2]string{{"type", "result"}, {"id", "q1"}, {"from", xmpptest.Bob}}, false},
	} {
		p := &pendingIQ{to: bob, timer: time.NewTimer(time.Hour)}
		tr := &IQTracker{pending: map[string]*pendingIQ{"q1": p}}
		start := &xml.StartElement{Name: xml.Name{Space: tc.space, Local: "iq"}}
		for _, a := range tc.attrs {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a[0]}, Value: a[1]})
		}
		got, ok := tr.answerTo(start)
		if ok != tc.take || (ok && got != p) {
			t.Errorf("%s: answerTo took %v (%v), want %v", tc.name, ok, got, tc.take)
		}
		if _, waiting := tr.pending["q1"]; waiting == tc.take {
			t.Errorf("%s: the IQ still waits: %v, want %v", tc.name, waiting, !tc.take)
		}
		p.timer.Stop()
	}
}
