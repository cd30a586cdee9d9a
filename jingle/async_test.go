package jingle_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/internal/goroutines"
	"github.com/jinglekit/jinglekit/internal/testwait"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmppclient"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// newTrackedSide is newSide with the Manager's stream an
// xmppclient.IQTracker, as a Manager given an xmppclient.Client has.
func newTrackedSide(t *testing.T, n *xmpptest.Network, addr string, x *jingletest.Exchange) (*side, *xmppclient.IQTracker) {
	t.Helper()
	tr := &xmppclient.IQTracker{}
	sd := wireSide(t, addr, x, jingle.Limits{}, func(h xmpp.Handler) *xmpp.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		xs, err := n.Client(ctx, jid.MustParse(addr), tr.Handler(h))
		if err != nil {
			t.Fatal(err)
		}
		tr.SetSession(xs)
		return xs
	})
	sd.m.SetStream(tr)
	t.Cleanup(func() { tr.Close(nil) })
	return sd, tr
}

func waitErr(t *testing.T, ch chan error) error {
	t.Helper()
	return testwait.Recv(t, ch, 10*time.Second, "the answer")
}

// TestTransportInfoFunc checks the asynchronous transport-info over a
// stream that hands answers over (an IQTracker): the acknowledgement and an
// error answer are delivered, a missing answer ends when ctx's deadline
// passes, the stream's end fails what is in flight, and no goroutine waits
// for an answer meanwhile.
func TestTransportInfoFunc(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	alice, atr := newTrackedSide(t, n, xmpptest.Alice, x)
	bob, _ := newTrackedSide(t, n, xmpptest.Bob, x)
	_, bs := acceptedPair(t, alice, bob, offer("c1", jingletest.PipeNS))
	at := alice.pipe.Transports()[0]
	sig, ok := at.Params().Signal.(jingle.AsyncSignaler)
	if !ok {
		t.Fatal("the Manager's Signaler is not an AsyncSignaler")
	}
	send := func(d time.Duration) chan error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		ch := make(chan error, 1)
		if err := sig.TransportInfoFunc(ctx, at.Local(), func(err error) { ch <- err }); err != nil {
			t.Fatal(err)
		}
		return ch
	}

	// Acknowledged.
	if err := waitErr(t, send(10*time.Second)); err != nil {
		t.Fatalf("acknowledged transport-info: %v", err)
	}
	bt := bob.pipe.Transports()[0]
	waitFor(t, func() bool { return len(bt.Infos()) == 1 })

	// Not answered: bob's results to alice are lost.
	bobJID := jid.MustParse(xmpptest.Bob)
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
		if from.Equal(bobJID) && bytes.Contains(raw, []byte(`type="result"`)) {
			return nil
		}
		return raw
	})
	start := time.Now()
	ch := send(300 * time.Millisecond)
	if n := goroutines.In(goroutines.IQWaiter); n != 0 {
		t.Errorf("%d goroutines wait for IQ answers", n)
	}
	if err := waitErr(t, ch); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered transport-info: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the missing answer was waited for %v", d)
	}

	// An error answer: bob ends his session without telling alice.
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
		if from.Equal(bobJID) && bytes.Contains(raw, []byte("session-terminate")) {
			return nil
		}
		return raw
	})
	tctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = bs.Terminate(tctx, jingle.Reason{Condition: jingle.ReasonSuccess})
	cancel()
	if err := waitErr(t, send(10*time.Second)); !errors.Is(err, jingle.ErrUnknownSession) {
		t.Errorf("transport-info for a session bob ended: %v, want unknown-session", err)
	}

	// In flight when the stream ends: nothing from bob gets through.
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
		if from.Equal(bobJID) {
			return nil
		}
		return raw
	})
	ch = send(time.Minute)
	atr.Close(nil)
	if err := waitErr(t, ch); !errors.Is(err, xmppclient.ErrStreamEnded) {
		t.Errorf("transport-info in flight at the stream's end: %v, want ErrStreamEnded", err)
	}
	n.SetFilter(nil)
}

// TestTransportInfoFuncPlainStream checks the asynchronous transport-info
// over a stream that cannot hand answers over (*xmpp.Session): it waits
// for the answer and delivers it before it returns.
func TestTransportInfoFuncPlainStream(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	acceptedPair(t, alice, bob, offer("c1", jingletest.PipeNS))
	at := alice.pipe.Transports()[0]
	ch := make(chan error, 1)
	if err := at.Params().Signal.(jingle.AsyncSignaler).TransportInfoFunc(tctx(t), at.Local(), func(err error) { ch <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ch:
		if err != nil {
			t.Errorf("acknowledged transport-info: %v", err)
		}
	default:
		t.Error("TransportInfoFunc returned before delivering the answer")
	}
}
