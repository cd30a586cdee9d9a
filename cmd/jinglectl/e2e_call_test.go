package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/rtp"
)

// parseCallEvents parses the JSON lines of call or answer.
func parseCallEvents(t *testing.T, out string) []callEvent {
	t.Helper()
	var evs []callEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e callEvent
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %q is not a call event: %v", sc.Text(), err)
		}
		if e.Event == "" || e.Time.IsZero() {
			t.Fatalf("line %q lacks event or time", sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// eventNames lists the names of evs in order.
func eventNames(evs []callEvent) []string {
	var names []string
	for _, e := range evs {
		names = append(names, e.Event)
	}
	return names
}

func findEvent(evs []callEvent, name string) (callEvent, bool) {
	for _, e := range evs {
		if e.Event == name {
			return e, true
		}
	}
	return callEvent{}, false
}

// oggPackets reads every Opus packet of an Ogg file.
func oggPackets(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r, err := rtp.NewOggReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not an Ogg Opus file: %v", err)
	}
	var pkts [][]byte
	for {
		p, _, err := r.ReadPacket()
		if errors.Is(err, io.EOF) {
			return pkts
		}
		if err != nil {
			t.Fatalf("reading Ogg packet %d: %v", len(pkts), err)
		}
		pkts = append(pkts, bytes.Clone(p))
	}
}

// TestCallAnswerEcho: bob answers with --echo --record --once; carol, not
// in --accept-from, is declined (exit 7); alice calls bob's bare JID
// (XEP-0353) with an Ogg file, records for 3 s and finds her own audio in
// the recording, and so does bob's.
func TestCallAnswerEcho(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob, carol := newAccount(t, srv, "alice"), newAccount(t, srv, "bob"), newAccount(t, srv, "carol")

	bobRec := t.TempDir()
	ans := c.start(bob, append([]string{"answer"}, append(c.accountArgs(bob, "phone"),
		"--accept-from", alice.jid, "--echo", "--record", bobRec, "--once", "--json", "--allow-loopback")...)...)
	waitFor(t, 30*time.Second, "answer to be ready", func() bool {
		return strings.Contains(ans.stdout.String(), `"event":"ready"`)
	})

	src := t.TempDir()
	ogg := filepath.Join(src, "alice.ogg")
	if err := os.WriteFile(ogg, testmedia.AliceOgg(), 0o600); err != nil {
		t.Fatal(err)
	}

	// An unlisted caller is declined.
	start := time.Now()
	r := c.run(60*time.Second, carol, append([]string{"call"}, append(c.accountArgs(carol, "x"),
		"--audio", ogg, "--json", "--allow-loopback", "--seconds", "1", bob.jid)...)...)
	if r.code != exitDeclined {
		t.Fatalf("carol's call: want exit %d (declined), got %s", exitDeclined, r)
	}
	t.Logf("carol declined after %s", time.Since(start))
	evs := parseCallEvents(t, r.stdout)
	if e, ok := findEvent(evs, "error"); !ok || e.Outcome != "declined" {
		t.Errorf("carol's call: want an error event with outcome declined, got %+v", evs)
	}
	if _, ok := findEvent(evs, "connected"); ok {
		t.Errorf("carol's call connected: %v", eventNames(evs))
	}

	// Also when calling the full JID directly (no XEP-0353): the
	// session-initiate is answered with decline.
	r = c.run(60*time.Second, carol, append([]string{"call"}, append(c.accountArgs(carol, "y"),
		"--json", "--allow-loopback", bob.jid+"/phone")...)...)
	if r.code != exitDeclined {
		t.Fatalf("carol's direct call: want exit %d (declined), got %s", exitDeclined, r)
	}
	if e, ok := findEvent(parseCallEvents(t, r.stdout), "ended"); !ok || e.Reason != "decline" || e.Outcome != "declined" {
		t.Errorf("carol's direct call: want ended with reason decline, got %s", r.stdout)
	}

	// Alice's call is answered and echoed.
	rec := t.TempDir()
	start = time.Now()
	r = c.run(90*time.Second, alice, append([]string{"call"}, append(c.accountArgs(alice, "desk"),
		"--audio", ogg, "--record", rec, "--seconds", "3", "--json", "--allow-loopback", bob.jid)...)...)
	if r.code != exitOK {
		t.Fatalf("alice's call: %s", r)
	}
	t.Logf("alice's call took %s:\n%s", time.Since(start), r.stdout)
	evs = parseCallEvents(t, r.stdout)
	names := strings.Join(eventNames(evs), ",")
	for _, want := range []string{"accepted", "connected", "ended", "recorded"} {
		if _, ok := findEvent(evs, want); !ok {
			t.Errorf("alice's call: no %s event in %s", want, names)
		}
	}
	if e, _ := findEvent(evs, "ended"); e.Reason != "success" || e.Outcome != "ok" {
		t.Errorf("alice's call ended with %+v, want reason success", e)
	}
	if e, _ := findEvent(evs, "accepted"); !strings.HasPrefix(e.Peer, bob.jid+"/phone") {
		t.Errorf("accepted by %q, want %s/phone", e.Peer, bob.jid)
	}

	// alice has hung up and her process has exited: answer --once must
	// follow within 2 s (it used to linger 15 s: the call's end waited for
	// OnCall's goroutine, which waited for the call's end).
	hungUp := time.Now()
	res := ans.wait(t, 30*time.Second)
	if res.code != exitOK {
		t.Fatalf("answer --once: %s", res)
	}
	if d := time.Since(hungUp); d > 2*time.Second {
		t.Errorf("answer --once exited %s after the caller hung up, want at most 2s", d)
	}
	aevs := parseCallEvents(t, res.stdout)
	if e, ok := findEvent(aevs, "declined"); !ok || !strings.HasPrefix(e.Peer, carol.jid) {
		t.Errorf("answer: no declined event for carol: %v", eventNames(aevs))
	}
	if e, ok := findEvent(aevs, "incoming"); !ok || !strings.HasPrefix(e.Peer, alice.jid) {
		t.Errorf("answer: no incoming event for alice: %v", eventNames(aevs))
	}
	if _, ok := findEvent(aevs, "connected"); !ok {
		t.Errorf("answer: not connected: %v", eventNames(aevs))
	}

	// The recording is valid Ogg and holds alice's own packets.
	files, err := filepath.Glob(filepath.Join(rec, "*.ogg"))
	if err != nil || len(files) != 1 {
		t.Fatalf("recordings: %v, %v", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	got, own := alicesPackets(t, data)
	t.Logf("recorded %d packets, %d of them alice's own", len(got), own)
	if len(got) < 50 || own < len(got)*9/10 {
		t.Fatalf("recording has %d packets, %d of them from alice's file: want at least 50, nearly all hers", len(got), own)
	}
	if e, _ := findEvent(evs, "recorded"); e.Packets != len(got) || e.Path != files[0] {
		t.Errorf("recorded event %+v, file %s has %d packets", e, files[0], len(got))
	}
	// bob echoed and recorded at once: his recording is alice's audio.
	files, err = filepath.Glob(filepath.Join(bobRec, "*.ogg"))
	if err != nil || len(files) != 1 {
		t.Fatalf("bob's recordings: %v, %v", files, err)
	}
	if data, err = os.ReadFile(files[0]); err != nil {
		t.Fatal(err)
	}
	got, own = alicesPackets(t, data)
	t.Logf("bob recorded %d packets, %d of them alice's", len(got), own)
	if len(got) < 50 || own < len(got)*9/10 {
		t.Errorf("bob's recording has %d packets, %d of them from alice's file", len(got), own)
	}
	if _, ok := findEvent(aevs, "recorded"); !ok {
		t.Errorf("answer: no recorded event: %v", eventNames(aevs))
	}
}

// alicesPackets returns the packets of the Ogg recording data and how
// many of them are packets of alice's test file.
func alicesPackets(t *testing.T, data []byte) (got [][]byte, own int) {
	t.Helper()
	sent := map[string]bool{}
	for _, p := range oggPackets(t, testmedia.AliceOgg()) {
		sent[string(p)] = true
	}
	got = oggPackets(t, data)
	for _, p := range got {
		if sent[string(p)] {
			own++
		}
	}
	return got, own
}

// TestAnswerRosterDefault: with no --accept-from, answer takes calls from
// the roster contacts with a mutual subscription only.
func TestAnswerRosterDefault(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob, carol := newAccount(t, srv, "alice"), newAccount(t, srv, "bob"), newAccount(t, srv, "carol")
	subscribe(t, srv, alice, bob)
	ans := c.start(bob, append([]string{"answer"}, append(c.accountArgs(bob, "phone"),
		"--echo", "--once", "--json", "--allow-loopback")...)...)
	waitFor(t, 30*time.Second, "answer to be ready", func() bool {
		return strings.Contains(ans.stdout.String(), `"event":"ready"`)
	})
	r := c.run(60*time.Second, carol, append([]string{"call"}, append(c.accountArgs(carol, "x"),
		"--json", "--allow-loopback", "--seconds", "1", bob.jid+"/phone")...)...)
	if r.code != exitDeclined {
		t.Fatalf("carol (not a contact): want exit %d (declined), got %s", exitDeclined, r)
	}
	r = c.run(60*time.Second, alice, append([]string{"call"}, append(c.accountArgs(alice, "desk"),
		"--json", "--allow-loopback", "--seconds", "1", bob.jid+"/phone")...)...)
	if r.code != exitOK {
		t.Fatalf("alice (mutual contact): %s", r)
	}
	if _, ok := findEvent(parseCallEvents(t, r.stdout), "connected"); !ok {
		t.Fatalf("alice's call never connected: %s", r.stdout)
	}
}
