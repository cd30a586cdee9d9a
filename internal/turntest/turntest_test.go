package turntest

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testserver"
	"github.com/pion/turn/v2"
)

var shared Lazy

// TestMain stops the shared server, then checks that no goroutine (the
// process waiters) is left behind.
func TestMain(m *testing.M) { os.Exit(testserver.MainNoLeaks(m, &shared)) }

// TestAllocate starts coturn and allocates a relay with REST credentials
// computed like Prosody's, over UDP and over TCP; wrong credentials are
// refused.
func TestAllocate(t *testing.T) {
	srv := shared.Get(t)
	cfgText, err := os.ReadFile(srv.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listening-ip=127.0.0.1", "static-auth-secret=" + srv.Secret, "no-cli", "allow-loopback-peers"} {
		if !strings.Contains(string(cfgText), want) {
			t.Errorf("config lacks %q", want)
		}
	}
	user, pass := srv.Credentials("alice", time.Hour)
	for _, tc := range []struct {
		name       string
		transport  string
		user, pass string
		ok         bool
	}{
		{"udp", "udp", user, pass, true},
		{"tcp", "tcp", user, pass, true},
		{"bad password", "udp", user, "x" + pass, false},
		{"expired", "udp", func() string { u, _ := srv.Credentials("alice", -time.Hour); return u }(),
			func() string { _, p := srv.Credentials("alice", -time.Hour); return p }(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay, err := allocate(t, srv, tc.transport, tc.user, tc.pass)
			if tc.ok && err != nil {
				t.Fatalf("allocate: %v\n%s", err, srv.LogTail(20))
			}
			if !tc.ok && err == nil {
				t.Fatalf("allocated %s with bad credentials", relay)
			}
			if tc.ok && !strings.HasPrefix(relay, "127.0.0.1:") {
				t.Errorf("relay address %s, want 127.0.0.1", relay)
			}
		})
	}
}

func allocate(t *testing.T, srv *Server, transport, user, pass string) (string, error) {
	t.Helper()
	var conn net.PacketConn
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case "tcp":
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	defer conn.Close()
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: srv.Addr, TURNServerAddr: srv.Addr, Conn: conn,
		Username: user, Password: pass, Realm: srv.Realm,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		return "", err
	}
	defer relay.Close()
	return relay.LocalAddr().String(), nil
}

// TestStopRemovesDirectory: Stop ends the process and removes its files.
func TestStopRemovesDirectory(t *testing.T) {
	shared.Get(t) // skips or fails when coturn is missing, like the others
	srv, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !srv.Running() {
		t.Fatal("not running after Start")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Fatal("running after Stop")
	}
	if _, err := os.Stat(srv.Dir); !os.IsNotExist(err) {
		t.Fatalf("directory left: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestLongTermCredentials: with Users, coturn runs the long-term
// credential mechanism with those accounts.
func TestLongTermCredentials(t *testing.T) {
	shared.Get(t)
	srv, err := Start(context.Background(), Options{Users: map[string]string{"alice": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if srv.Secret != "" {
		t.Errorf("secret %q in lt-cred mode", srv.Secret)
	}
	if _, err := allocate(t, srv, "udp", "alice", "secret"); err != nil {
		t.Fatalf("allocate: %v\n%s", err, srv.LogTail(20))
	}
	if _, err := allocate(t, srv, "udp", "alice", "wrong"); err == nil {
		t.Fatal("allocated with a wrong password")
	}
}

// TestNotInstalled: a missing binary is reported as ErrNotInstalled, which
// Lazy.Get turns into a skip (or a failure under EnvRequire).
func TestNotInstalled(t *testing.T) {
	_, err := Start(context.Background(), Options{Binary: "/nonexistent/turnserver"})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start: %v, want ErrNotInstalled", err)
	}
}
