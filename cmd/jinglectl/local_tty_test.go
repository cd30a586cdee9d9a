package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testproc"
)

// TestLocalReceivePrompt runs receive --local with standard input on a
// pseudo-terminal and no --accept-from: each offer is asked about; "n"
// declines (the sender exits 7, nothing is written), "y" accepts.
func TestLocalReceivePrompt(t *testing.T) {
	c := newCLI(t, nil)
	master, slave := openPTY(t)
	defer master.Close()
	in := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := c.command(ctx, account{}, "receive", "--local", "--name", "bob@host-b", "--listen", "127.0.0.1:0", "--no-mdns", "--dir", in)
	stderr := &testproc.Output{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &testproc.Output{}, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("receiver stderr:\n%s", stderr)
		}
	}()
	var addr string
	waitFor(t, 10*time.Second, "the receiver to listen", func() bool {
		if m := receivingOn.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	src := randomFile(t, t.TempDir(), "asked.bin", 10000)
	for i, answer := range []string{"n", "y"} {
		sender := c.start(account{}, "send", "--local", "--name", "alice@host-a", "--peer", addr, "bob@host-b", src)
		want := "accept asked.bin (9.8 KiB) from alice@host-a? [y/N]"
		waitFor(t, 10*time.Second, "the question", func() bool { return strings.Count(stderr.String(), want) == i+1 })
		if _, err := master.Write([]byte(answer + "\n")); err != nil {
			t.Fatal(err)
		}
		r := sender.wait(t, 30*time.Second)
		_, statErr := os.Stat(filepath.Join(in, "asked.bin"))
		switch answer {
		case "n":
			if r.code != exitDeclined {
				t.Fatalf("answered n: want exit %d, got %s", exitDeclined, r)
			}
			if entries, _ := os.ReadDir(in); len(entries) != 0 {
				t.Fatalf("answered n, but %d files were written", len(entries))
			}
		case "y":
			if r.code != exitOK || statErr != nil {
				t.Fatalf("answered y: %s (file: %v)", r, statErr)
			}
			sameContent(t, src, filepath.Join(in, "asked.bin"))
		}
	}
}
