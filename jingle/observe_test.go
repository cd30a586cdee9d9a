package jingle_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
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
	fallBack(t, alice, bob, "hello")
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
