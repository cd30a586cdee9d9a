package jingle_test

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu            sync.Mutex
	events        []string
	read, written int
}

func (r *recorder) ObserveTransport(e jingle.TransportEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Kind == jingle.TransportBytes {
		r.read += e.Read
		r.written += e.Written
		return
	}
	s := fmt.Sprintf("%s %s %s", e.Kind, e.Content.Name, e.Namespace)
	if e.Kind == jingle.TransportCreated && e.Proposer {
		s += " proposer"
	}
	if e.Err != nil {
		s += " err"
	}
	r.events = append(r.events, s)
}

func (r *recorder) has(t *testing.T, who string, want ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range want {
		if !slices.Contains(r.events, w) {
			t.Errorf("%s's observer lacks %q: %q", who, w, r.events)
		}
	}
}

// TestObserver: an Observer hears of the transports made, accepted,
// failed, replaced and connected, and of the bytes moved, on both sides of
// a session whose first transport fails.
func TestObserver(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	ra, rb := &recorder{}, &recorder{}
	alice.m.Observer, bob.m.Observer = ra, rb
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer("f", jingletest.BrokenNS, jingletest.PipeNS))
	if err != nil {
		t.Fatal(err)
	}
	bs := incoming(t, bob)
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, as, jingle.ActionSessionAccept)
	done := make(chan error, 1)
	go func() {
		c, err := bs.Conn(ctx, "f")
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, 5))
		}
		done <- err
	}()
	c, err := as.Conn(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, p := jingletest.BrokenNS, jingletest.PipeNS
	ra.has(t, "alice", "created f "+b+" proposer", "accepted f "+b, "failed f "+b+" err",
		"created f "+p+" proposer", "replaced f "+p, "accepted f "+p, "connected f "+p)
	rb.has(t, "bob", "created f "+b, "failed f "+b+" err", "created f "+p, "replaced f "+p, "connected f "+p)
	ra.mu.Lock()
	rb.mu.Lock()
	defer ra.mu.Unlock()
	defer rb.mu.Unlock()
	if ra.written != 5 || rb.read != 5 {
		t.Errorf("bytes: alice wrote %d, bob read %d; want 5 and 5", ra.written, rb.read)
	}
}
