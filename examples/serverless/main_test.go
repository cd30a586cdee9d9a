package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
)

// TestServerless: two link-local peers on loopback, without multicast:
// alice reaches bob by address and sends him a file, which he stores.
func TestServerless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	got := make(chan filetransfer.Result, 1)
	bob, err := start(ctx, options{name: "bob@forza", listen: "127.0.0.1:0", noMDNS: true, recv: dir, loopback: true,
		done: func(r filetransfer.Result) { got <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.close()
	alice, err := start(ctx, options{name: "alice@pronto", listen: "127.0.0.1:0", noMDNS: true, loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.close()
	pr, err := alice.node.AddPeer(ctx, "", bob.node.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte("no server needed"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := alice.send(ctx, pr.Name, path)
	if err != nil || !r.Verified {
		t.Fatalf("send: %+v, %v", r, err)
	}
	res := <-got
	data, err := os.ReadFile(res.Path)
	if err != nil || string(data) != "no server needed" {
		t.Fatalf("bob stored %q (%v)", data, err)
	}
}
