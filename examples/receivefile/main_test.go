package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/exampletest"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testserver"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

var prosody prosodytest.Lazy

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &prosody)) }

// TestReceiveFile: the example receives a file from the allowed contact on
// a real Prosody and stops (-once); a stranger's file is declined.
func TestReceiveFile(t *testing.T) {
	srv := prosody.Get(t)
	alice := exampletest.NewPeer(t, exampletest.Account(t, srv, "alice", "phone"), t.TempDir())
	eve := exampletest.NewPeer(t, exampletest.Account(t, srv, "eve", "x"), t.TempDir())
	cfg := exampletest.Account(t, srv, "bob", "laptop")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- receiveFiles(ctx, cfg, socks5.Settings{AllowLoopback: true}, alice.Addr.Bare(), dir, true, func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("receiveFiles: %v", err)
	}
	if _, err := filetransfer.Send(ctx, eve.M, cfg.JID, filetransfer.BytesSource("spam.txt", []byte("spam"))); !errors.Is(err, filetransfer.ErrDeclined) {
		t.Errorf("a stranger's file: %v, want declined", err)
	}
	res, err := filetransfer.Send(ctx, alice.M, cfg.JID, filetransfer.BytesSource("photo.jpg", []byte("not really a photo")))
	if err != nil || !res[0].Verified {
		t.Fatalf("Send: %+v, %v", res, err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("receiveFiles after the first file: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "photo.jpg"))
	if err != nil || string(data) != "not really a photo" {
		t.Fatalf("stored %q (%v)", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "spam.txt")); err == nil {
		t.Error("the stranger's file was stored")
	}
}
