// Package testserver holds what the harnesses of the real servers that
// tests start (prosodytest, ejabberdtest, turntest) share: one server
// started on first use and shared by the tests of a package (Lazy); the
// TestMain that stops those servers and then looks for leaked goroutines
// (Main, MainNoLeaks); the choice between skipping and failing a test
// when the server's program is missing (Verdict, React); and the names
// and passwords of the accounts a test registers (NewUser,
// CheckLocalpart, ContactPair).
//
// How a server starts, stops and registers an account stays in each
// harness: they talk to different servers.
package testserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Program is what a harness tells about its server's program, so that a
// test skips or fails when it cannot start (React).
type Program struct {
	// NotInstalled is the error, wrapped by the start error, that says the
	// program is missing.
	NotInstalled error
	// Env names the variable that, set to "1", makes a missing program a
	// failure instead of a skip.
	Env string
}

// Lazy starts one server of type S on first use and shares it between the
// tests of a package; the harness's Main stops it with Shutdown. The zero
// value is ready to use.
type Lazy[S any] struct {
	once    sync.Once
	srv     S
	started bool // srv holds a server that start returned
	err     error
	stopped bool
}

// Get returns the shared server. The first call starts it with start;
// later calls return the same server, or the same error.
func (l *Lazy[S]) Get(start func() (S, error)) (S, error) {
	l.once.Do(func() {
		l.srv, l.err = start()
		l.started = l.err == nil
	})
	return l.srv, l.err
}

// For is Get for a test: when the server did not start, it skips or fails
// t as React says for the program p, and returns the zero S.
func (l *Lazy[S]) For(t testing.TB, p Program, start func() (S, error)) S {
	t.Helper()
	srv, err := l.Get(start)
	if err != nil {
		React(t, err, p.NotInstalled, p.Env)
		var zero S
		return zero
	}
	return srv
}

// Shutdown stops the server with stop if Get started one, at most once.
// Every later Get returns stopped, the error of a server that Main has
// already shut down.
func (l *Lazy[S]) Shutdown(stop func(S) error, stopped error) error {
	l.once.Do(func() { l.err = stopped })
	if !l.started || l.stopped {
		return nil
	}
	l.stopped = true
	l.err = stopped
	return stop(l.srv)
}

// Shared is a server shared by the tests of a package, which TestMain
// shuts down after them (Main): a prosodytest.Lazy, ejabberdtest.Lazy or
// LazyCluster, turntest.Lazy, or TestMain's own clean-up (Cleanup).
type Shared interface {
	// Shutdown stops the server if a test started it; later uses fail.
	Shutdown() error
}

// Cleanup is a clean-up step of TestMain, run by Main in turn with the
// shared servers' shutdowns.
type Cleanup func() error

// Shutdown runs f.
func (f Cleanup) Shutdown() error { return f() }

// Main runs the tests of m, then shuts down every server, in order. A
// failure to stop one cleanly turns a passing run into a failing one.
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &prosody)) }
func Main(m *testing.M, servers ...Shared) int {
	code := m.Run()
	for _, s := range servers {
		if err := s.Shutdown(); err != nil {
			what := fmt.Sprintf("stopping the shared %T", s)
			if _, ok := s.(Cleanup); ok {
				what = "TestMain's clean-up"
			}
			fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// MainNoLeaks is Main, and then, when every test passed and every server
// stopped cleanly, fails the run if a goroutine is left behind
// (goleak.Find): everything a test started must be stopped by its owner.
//
//	func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &prosody)) }
func MainNoLeaks(m *testing.M, servers ...Shared) int {
	code := Main(m, servers...)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	return code
}

// Verdict decides how a test reacts to err, the error of starting a
// server: skip it only when err wraps notInstalled (the server's program
// is missing) and the run does not require it. The message names env, the
// variable that, set to "1", requires it.
func Verdict(err, notInstalled error, env string, required bool) (skip bool, msg string) {
	if errors.Is(err, notInstalled) {
		if required {
			return false, fmt.Sprintf("%v (%s=1 is set, so this is a failure)", err, env)
		}
		return true, fmt.Sprintf("%v (set %s=1 to fail instead of skipping)", err, env)
	}
	return false, err.Error()
}

// React skips or fails t after err, the error of starting a server, as
// Verdict says, with the server required when the variable env is "1".
func React(t testing.TB, err, notInstalled error, env string) {
	t.Helper()
	skip, msg := Verdict(err, notInstalled, env, os.Getenv(env) == "1")
	if skip {
		t.Skip(msg)
	} else {
		t.Fatal(msg)
	}
}

// CheckLocalpart accepts the localparts that a harness can pass safely to
// its server's tools: lower-case letters, digits and ._-. harness names
// the harness in the error.
func CheckLocalpart(harness, user string) error {
	if user == "" {
		return fmt.Errorf("%s: empty username", harness)
	}
	for _, c := range user {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s: username %q: use only a-z, 0-9 and ._-", harness, user)
		}
	}
	return nil
}

// SubscriptionPair returns the localparts of a and b (localparts or bare
// JIDs on domain) for a mutual subscription, or an error when one is not
// a valid localpart or both are the same user.
func SubscriptionPair(harness, domain, a, b string) (string, string, error) {
	a, b = strings.TrimSuffix(a, "@"+domain), strings.TrimSuffix(b, "@"+domain)
	for _, u := range []string{a, b} {
		if err := CheckLocalpart(harness, u); err != nil {
			return "", "", err
		}
	}
	if a == b {
		return "", "", fmt.Errorf("%s: MutualSubscribe of %q with itself", harness, a)
	}
	return a, b, nil
}

// NewUser registers with add a new account on domain, whose localpart is
// prefix (lower-cased; "user" when empty) and the next number of seq, with
// a random password. It fails t on error; harness names the harness in
// the message.
func NewUser(t testing.TB, harness, domain, prefix string, seq *atomic.Uint64,
	add func(ctx context.Context, user, password string) error) (jid, password string) {
	t.Helper()
	if prefix == "" {
		prefix = "user"
	}
	user := fmt.Sprintf("%s-%d", strings.ToLower(prefix), seq.Add(1))
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails: Go crashes the program if the system RNG does
	password = hex.EncodeToString(b)
	if err := add(t.Context(), user, password); err != nil {
		t.Fatalf("%s: NewUser: %v", harness, err)
	}
	return user + "@" + domain, password
}

// Accounts is what a harness's server offers a test to register users
// and make them roster contacts: prosodytest.Server, ejabberdtest.Server
// and ejabberdtest.Cluster.
type Accounts interface {
	// NewUser registers a new account whose localpart starts with prefix,
	// with a random password. It fails t on error.
	NewUser(t testing.TB, prefix string) (jid, password string)
	// MutualSubscribe makes users a and b (localparts or bare JIDs) each
	// other's roster contacts, with subscriptions both ways.
	MutualSubscribe(ctx context.Context, a, b string) error
}

// Account is a user registered on a test server.
type Account struct {
	JID      string // bare
	Password string
}

// subscribeTimeout bounds ContactPair's MutualSubscribe.
const subscribeTimeout = 30 * time.Second

// ContactPair registers two new users on srv, "alice" and "bob", and
// makes them mutual roster contacts. It fails t on error.
func ContactPair(t testing.TB, srv Accounts) (alice, bob Account) {
	t.Helper()
	alice.JID, alice.Password = srv.NewUser(t, "alice")
	bob.JID, bob.Password = srv.NewUser(t, "bob")
	ctx, cancel := context.WithTimeout(t.Context(), subscribeTimeout)
	defer cancel()
	if err := srv.MutualSubscribe(ctx, alice.JID, bob.JID); err != nil {
		t.Fatalf("contacts %s and %s: %v", alice.JID, bob.JID, err)
	}
	return alice, bob
}
