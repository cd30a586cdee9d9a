package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/exampletest"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

var prosody prosodytest.Lazy

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &prosody)) }

// TestSendFile: the example sends a file to a receiver on a real Prosody,
// which stores it byte for byte.
func TestSendFile(t *testing.T) {
	srv := prosody.Get(t)
	sender := exampletest.Account(t, srv, "alice", "sendfile")
	dir := t.TempDir()
	bob := exampletest.NewPeer(t, exampletest.Account(t, srv, "bob", "laptop"), dir, sender.JID.Bare())
	path := filepath.Join(t.TempDir(), "notes.txt")
	want := []byte("notes for bob\n")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := sendFile(ctx, sender, socks5.Settings{AllowLoopback: true}, bob.Addr, path)
	if err != nil || !r.Verified {
		t.Fatalf("sendFile: %+v, %v", r, err)
	}
	got := <-bob.Results
	data, err := os.ReadFile(got.Path)
	if err != nil || string(data) != string(want) || got.Name != "notes.txt" {
		t.Fatalf("bob stored %s = %q (%v), want notes.txt = %q", got.Path, data, err, want)
	}
}
