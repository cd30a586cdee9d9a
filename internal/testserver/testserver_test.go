package testserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

type fakeServer struct{ stops int }

func (s *fakeServer) Stop() error { s.stops++; return nil }

var errStopped = errors.New("stopped")

func TestLazyStartsOnceAndStopsOnce(t *testing.T) {
	var l Lazy[*fakeServer]
	starts := 0
	start := func() (*fakeServer, error) { starts++; return &fakeServer{}, nil }
	a, err := l.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := l.Get(start); b != a || starts != 1 {
		t.Fatalf("second Get: same server %v, %d starts; want the same, 1 start", b == a, starts)
	}
	stop := (*fakeServer).Stop
	for range 2 {
		if err := l.Shutdown(stop, errStopped); err != nil {
			t.Fatal(err)
		}
	}
	if a.stops != 1 {
		t.Errorf("server stopped %d times, want 1", a.stops)
	}
	if _, err := l.Get(start); !errors.Is(err, errStopped) || starts != 1 {
		t.Errorf("Get after Shutdown: %v after %d starts, want %v and no new start", err, starts, errStopped)
	}
}

func TestLazyShutdownBeforeGet(t *testing.T) {
	var l Lazy[*fakeServer]
	if err := l.Shutdown((*fakeServer).Stop, errStopped); err != nil {
		t.Fatal(err)
	}
	started := false
	if _, err := l.Get(func() (*fakeServer, error) { started = true; return &fakeServer{}, nil }); !errors.Is(err, errStopped) || started {
		t.Errorf("Get after Shutdown: %v, started %v; want %v, not started", err, started, errStopped)
	}
}

func TestLazyStartError(t *testing.T) {
	var l Lazy[*fakeServer]
	boom := errors.New("boom")
	for range 2 {
		if _, err := l.Get(func() (*fakeServer, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("Get: %v, want %v", err, boom)
		}
	}
	if err := l.Shutdown(func(*fakeServer) error { t.Error("stopped a server that never started"); return nil }, errStopped); err != nil {
		t.Fatal(err)
	}
}

func TestVerdict(t *testing.T) {
	notInstalled := errors.New("x not installed")
	missing := fmt.Errorf("%w (exec: not found)", notInstalled)
	broken := errors.New("x exited during start-up")
	for _, tc := range []struct {
		err      error
		required bool
		skip     bool
	}{
		{missing, false, true},
		{missing, true, false},
		{broken, false, false},
		{broken, true, false},
	} {
		skip, msg := Verdict(tc.err, notInstalled, "REQ", tc.required)
		if skip != tc.skip || !strings.Contains(msg, tc.err.Error()) {
			t.Errorf("Verdict(%v, required=%v) = %v, %q; want skip %v and the error", tc.err, tc.required, skip, msg, tc.skip)
		}
		if errors.Is(tc.err, notInstalled) && !strings.Contains(msg, "REQ=1") {
			t.Errorf("Verdict(%v) message %q does not name REQ", tc.err, msg)
		}
	}
}

func TestCheckLocalpart(t *testing.T) {
	for user, ok := range map[string]bool{"alice-1": true, "a.b_c": true, "": false, "Alice": false, "a b": false, "a@b": false} {
		if err := CheckLocalpart("h", user); (err == nil) != ok {
			t.Errorf("CheckLocalpart(%q) = %v, want ok %v", user, err, ok)
		}
	}
}

func TestSubscriptionPair(t *testing.T) {
	a, b, err := SubscriptionPair("h", "example.org", "alice@example.org", "bob")
	if err != nil || a != "alice" || b != "bob" {
		t.Errorf("SubscriptionPair = %q, %q, %v", a, b, err)
	}
	if _, _, err := SubscriptionPair("h", "example.org", "alice", "alice@example.org"); err == nil {
		t.Error("SubscriptionPair of a user with itself succeeded")
	}
	if _, _, err := SubscriptionPair("h", "example.org", "alice", "bob@other.org"); err == nil {
		t.Error("SubscriptionPair with a JID of another domain succeeded")
	}
}

func TestNewUser(t *testing.T) {
	var seq atomic.Uint64
	added := map[string]string{}
	add := func(_ context.Context, user, password string) error { added[user] = password; return nil }
	j1, p1 := NewUser(t, "h", "example.org", "Alice", &seq, add)
	j2, p2 := NewUser(t, "h", "example.org", "", &seq, add)
	if j1 != "alice-1@example.org" || j2 != "user-2@example.org" {
		t.Errorf("JIDs %q, %q; want alice-1@example.org, user-2@example.org", j1, j2)
	}
	if p1 == p2 || len(p1) != 24 || added["alice-1"] != p1 || added["user-2"] != p2 {
		t.Errorf("passwords %q, %q, registered %v", p1, p2, added)
	}
}

// fakeAccounts registers users in memory and records the subscriptions.
type fakeAccounts struct {
	seq      atomic.Uint64
	users    map[string]string
	contacts [][2]string
}

func (f *fakeAccounts) NewUser(t testing.TB, prefix string) (string, string) {
	return NewUser(t, "fake", "example.org", prefix, &f.seq, func(_ context.Context, user, password string) error {
		f.users[user+"@example.org"] = password
		return nil
	})
}

func (f *fakeAccounts) MutualSubscribe(_ context.Context, a, b string) error {
	f.contacts = append(f.contacts, [2]string{a, b})
	return nil
}

func TestContactPair(t *testing.T) {
	f := &fakeAccounts{users: map[string]string{}}
	alice, bob := ContactPair(t, f)
	if !strings.HasPrefix(alice.JID, "alice-") || !strings.HasPrefix(bob.JID, "bob-") {
		t.Errorf("users %q, %q; want alice-N and bob-N", alice.JID, bob.JID)
	}
	if f.users[alice.JID] != alice.Password || f.users[bob.JID] != bob.Password || alice.Password == bob.Password {
		t.Errorf("accounts %+v, %+v; registered %v", alice, bob, f.users)
	}
	if len(f.contacts) != 1 || f.contacts[0] != [2]string{alice.JID, bob.JID} {
		t.Errorf("subscriptions %v, want one between %s and %s", f.contacts, alice.JID, bob.JID)
	}
}
