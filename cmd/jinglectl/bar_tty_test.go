package main

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

// TestBarWidthOnPTY draws progress bars on a pseudo-terminal of 80 and of
// 200 columns: the renderer reads the width from the terminal, the bar is
// at least 20 columns wide at 80 (40 at 200), and no line is wider than
// the terminal.
func TestBarWidthOnPTY(t *testing.T) {
	barRE := regexp.MustCompile(`\[([=> ]+)\]`)
	for _, tc := range []struct{ cols, minBar int }{{80, 20}, {200, 40}} {
		master, slave := openPTY(t)
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: uint16(tc.cols)}); err != nil {
			t.Fatal(err)
		}
		var screen bytes.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(&screen, master)
		}()
		r := newRenderer(env{stdout: slave, stderr: slave}, "send", false, false)
		now := time.Now()
		r.event(agent.Event{Event: agent.EventOffered, ID: "1", File: "holiday-photos-2024.tar", Size: 10 << 20, Direction: agent.Send, Peer: "bob@example.org/phone", Time: now})
		time.Sleep(redrawInterval)
		r.event(agent.Event{Event: agent.EventProgress, ID: "1", Bytes: 5 << 20, Rate: 800 << 10, ETA: 6, Time: now})
		time.Sleep(redrawInterval)
		r.event(agent.Event{Event: agent.EventDone, ID: "1", Bytes: 10 << 20, Size: 10 << 20, Direction: agent.Send, Time: now})
		r.finish()
		slave.Close()
		<-done
		master.Close()
		out := screen.String()
		bars := barRE.FindAllStringSubmatch(out, -1)
		if len(bars) < 2 {
			t.Fatalf("%d columns: no bars drawn:\n%q", tc.cols, out)
		}
		for _, b := range bars {
			if n := len(b[1]); n < tc.minBar {
				t.Errorf("%d columns: bar of %d columns, want at least %d: %q", tc.cols, n, tc.minBar, b[0])
			}
		}
		for _, l := range strings.Split(strings.ReplaceAll(out, "\r", "\n"), "\n") {
			l = regexp.MustCompile(`\x1b\[[0-9]*[A-Z]`).ReplaceAllString(l, "")
			if n := len([]rune(l)); n > tc.cols {
				t.Errorf("%d columns: line of %d: %q", tc.cols, n, l)
			}
		}
		if !strings.Contains(out, "100%") || !strings.Contains(out, "✓") {
			t.Errorf("%d columns: no final bar:\n%q", tc.cols, out)
		}
		t.Logf("%d columns, bars of %d:\n%s", tc.cols, len(bars[0][1]), strings.TrimSpace(regexp.MustCompile(`\x1b\[[0-9]*[A-Z]|\r`).ReplaceAllString(out, "")))
	}
}
