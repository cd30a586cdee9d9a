package jingle_test

import (
	"fmt"
	"net"
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

// halfCloser is a stream with CloseWrite; watcher only watches the
// stream it wraps, as the Observer's wrapper does (Unwrap).
type (
	halfCloser struct{ net.Conn }
	watcher    struct{ net.Conn }
)

func (halfCloser) CloseWrite() error { return nil }
func (halfCloser) String() string    { return "halfCloser" }
func (w watcher) Unwrap() net.Conn   { return w.Conn }
func (watcher) String() string       { return "watcher" }

type closeWriter = interface{ CloseWrite() error }

// TestStreamAs: StreamAs finds the first stream of the chain that has
// the asked methods, through any number of wrappers, as errors.As does;
// a chain without one (or no stream) gives false.
func TestStreamAs(t *testing.T) {
	inner := halfCloser{}
	for _, tc := range []struct {
		conn net.Conn
		want string // the String of what is found, "" for none
	}{
		{inner, "halfCloser"},
		{watcher{inner}, "halfCloser"},
		{watcher{watcher{inner}}, "halfCloser"},
		{watcher{}, ""},
		{watcher{watcher{}}, ""},
		{nil, ""},
	} {
		cw, ok := jingle.StreamAs[closeWriter](tc.conn)
		got := ""
		if ok {
			got = cw.(fmt.Stringer).String()
		}
		if got != tc.want {
			t.Errorf("StreamAs(%v) = %q, %v; want %q", tc.conn, got, ok, tc.want)
		}
	}
	// The outermost match wins: a wrapper that has the method itself is
	// not looked through.
	if s, ok := jingle.StreamAs[fmt.Stringer](watcher{inner}); !ok || s.String() != "watcher" {
		t.Errorf("StreamAs[Stringer] found %v, %v; want the watcher", s, ok)
	}
}
