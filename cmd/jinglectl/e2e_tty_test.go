package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal of 100 columns.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pts: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatalf("set window size: %v", err)
	}
	return m, s
}

// TestProgressBars sends a rate-limited file with standard output and
// error on a pseudo-terminal: bars are drawn and redrawn, and end at 100%
// and verified. The same send to pipes draws nothing.
func TestProgressBars(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
	dst := t.TempDir()
	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "r"), "--dir", dst, "--accept-from", alice.jid, "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver up", func() bool { return strings.Contains(recv.stderr.String(), "waiting for files") })
	src := t.TempDir()
	big := randomFile(t, src, "big.bin", 1<<20)
	small := randomFile(t, src, "a-file-with-a-rather-long-name-that-is-cut.txt", 2000)

	master, slave := openPTY(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.command(ctx, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--allow-loopback", "--limit-rate", "700K", bob.jid+"/r", big, small)...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var screen bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(&screen, master) // ends with EIO once the child is gone
	}()
	err := cmd.Wait()
	master.Close()
	<-readDone
	out := screen.String()
	if err != nil {
		t.Fatalf("send on a terminal: %v\n%q", err, out)
	}
	redraws := strings.Count(out, "\x1b[2K")
	if redraws < 4 {
		t.Errorf("%d bar lines drawn, want several:\n%q", redraws, out)
	}
	for _, want := range []string{"big.bin", "ETA", "/s", "100%", "✓ sha-256 ok", "a-file-with-a-rather-", "…", "["} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
	if strings.Contains(out, "{\"event\"") {
		t.Errorf("JSON on a terminal without --json")
	}
	// No line wider than the terminal.
	for _, l := range strings.Split(strings.ReplaceAll(out, "\r", "\n"), "\n") {
		l = strings.TrimPrefix(l, "\x1b[2K")
		if n := len([]rune(l)); n > 100 && !strings.Contains(l, "\x1b[") {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}

	// The same to pipes: no bars, no escape sequences, a line per file.
	r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--allow-loopback", bob.jid+"/r", big)...)...)
	if r.code != 0 {
		t.Fatalf("send to pipes: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "\x1b[") || strings.Contains(r.stdout+r.stderr, "ETA") {
		t.Errorf("bars drawn to pipes:\n%s", r)
	}
	if !strings.HasPrefix(r.stdout, "sent big.bin (1.0 MiB) to "+bob.jid+"/r, sha-256 ") {
		t.Errorf("stdout: %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dst, "big (1).bin")); err != nil {
		t.Errorf("second copy not received as \"big (1).bin\": %v", err)
	}
}
