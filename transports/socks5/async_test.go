package socks5_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/internal/goroutines"
)

// portRE matches a candidate's port attribute as the network writes it.
var portRE = regexp.MustCompile(`port="[0-9]+"`)

// iqID returns the id attribute of a stanza as the network writes it.
func iqID(raw []byte) string {
	_, rest, ok := bytes.Cut(raw, []byte(` id="`))
	if !ok {
		return ""
	}
	id, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(id)
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
		checks, waits := goroutines.In("socks5.(*transport).runChecks"), goroutines.In(goroutines.IQWaiter)
		if checks == 0 && waits == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the bytestream up, %d goroutines still run the checks and %d wait for IQ answers", checks, waits)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tarpit accepts TCP connections on loopback and never answers them; it
// records when it accepted each.
type tarpit struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted []time.Time
}

func newTarpit(t *testing.T) *tarpit {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tarpit{ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.mu.Lock()
			tp.accepted = append(tp.accepted, time.Now())
			tp.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c) // until the checker gives up
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return tp
}

func (tp *tarpit) times() []time.Time {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.accepted)
}

// TestMaxParallelChecks: with MaxParallelChecks 2, bob's attempts to
// alice's candidates — sent to a streamhost that never answers — are at
// most two at a time over four sessions, and they all run in turn.
func TestMaxParallelChecks(t *testing.T) {
	bs := unreachable() // alice's attempts fail: bob's must all run
	bs.MaxParallelChecks = 2
	bs.ConnectTimeout = 300 * time.Millisecond
	n, alice, bob := newPair(t, loopback(), bs, false)
	tp := newTarpit(t)
	_, port, _ := net.SplitHostPort(tp.ln.Addr().String())
	// Alice's candidates, as bob sees them, point at the tarpit.
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
		if from.Equal(alice.j) && bytes.Contains(raw, []byte("session-initiate")) {
			return portRE.ReplaceAll(raw, []byte(`port="`+port+`"`))
		}
		return raw
	})
	var dials []<-chan connResult
	for i := range 4 {
		_, s := accepted(t, alice, bob, offer(fmt.Sprint("f", i)))
		dials = append(dials, dialAsync(t, s, fmt.Sprint("f", i)))
	}
	// Four attempts of 300ms, two at a time: the last two start when the
	// first two give up.
	deadline := time.Now().Add(5 * time.Second)
	for len(tp.times()) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 4 attempts made", len(tp.times()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	at := tp.times()
	if d := at[2].Sub(at[0]); d < 250*time.Millisecond {
		t.Errorf("the third attempt started %v after the first, want about 300ms (two at a time)", d)
	}
	_ = dials // the sessions end with the test
}
