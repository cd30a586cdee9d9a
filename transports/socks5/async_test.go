package socks5_test

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// iqID returns the id attribute of a stanza as the network writes it.
func iqID(raw []byte) string {
	_, rest, ok := bytes.Cut(raw, []byte(` id="`))
	if !ok {
		return ""
	}
	id, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(id)
}

// goroutinesIn counts the goroutines whose stack has a frame of fn.
func goroutinesIn(fn string) int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// TestReportNeedsNoWaiter: once the bytestream is up, no goroutine of the
// transport is left waiting for the peer's acknowledgement of its
// candidate report (the answers are held back here), and the bytestream
// does not wait for them either.
func TestReportNeedsNoWaiter(t *testing.T) {
	n, alice, bob := newPair(t, loopback(), loopback(), false)
	// The acknowledgements of the reports never arrive.
	var reports sync.Map // ids of the IQs carrying reports
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
		id := iqID(raw)
		if bytes.Contains(raw, []byte("candidate-used")) {
			reports.Store(id, true)
		} else if _, ok := reports.Load(id); ok && bytes.Contains(raw, []byte(`type="result"`)) {
			return nil
		}
		return raw
	})
	as, bs := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, as, bs, "f")
	send(t, ca, cb, 1<<10)
	deadline := time.Now().Add(2 * time.Second)
	for {
		checks, waits := goroutinesIn("socks5.(*transport).runChecks"), goroutinesIn("mellium.im/xmpp.(*Session).sendResp")
		if checks == 0 && waits == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the bytestream up, %d goroutines still run the checks and %d wait for IQ answers", checks, waits)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
