package ibb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

func TestTransferDirect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		block  int
		window int
		size   int
	}{
		{"empty", 0, 0, 0},
		{"one byte", 0, 0, 1},
		{"one block", 4096, 1, 4096},
		{"block plus one", 4096, 2, 4097},
		{"odd block", 1000, 3, 100_000},
		{"big blocks", 65535, 16, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &ibb.Method{BlockSize: tc.block, Window: tc.window}
			_, alice, bob := pair(t, m, &ibb.Method{})
			ca, cb := connect(t, alice, bob)
			want := tc.block
			if want == 0 {
				want = ibb.DefaultBlockSize
			}
			if ca.BlockSize() != want || cb.BlockSize() != want {
				t.Fatalf("block sizes %d and %d, want %d", ca.BlockSize(), cb.BlockSize(), want)
			}
			transfer(t, ca, cb, randomBytes(t, tc.size))
			if err := cb.Close(); err != nil {
				t.Fatalf("closing after the peer closed: %v", err)
			}
		})
	}
}

// TestBidirectional: both directions at once, each with its own seq.
func TestBidirectional(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{BlockSize: 512, Window: 4}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	a2b, b2a := randomBytes(t, 300_000), randomBytes(t, 200_000)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() { _, err := ca.Write(a2b); errs <- err })
	wg.Go(func() { _, err := cb.Write(b2a); errs <- err })
	var gotA, gotB []byte
	wg.Go(func() {
		b := make([]byte, len(b2a))
		_, err := io.ReadFull(ca, b)
		gotA = b
		errs <- err
	})
	wg.Go(func() {
		b := make([]byte, len(a2b))
		_, err := io.ReadFull(cb, b)
		gotB = b
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(gotA, b2a) || !bytes.Equal(gotB, a2b) {
		t.Fatal("data corrupted")
	}
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := cb.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("bob's Read after alice closed: %d, %v", n, err)
	}
}

// TestHalfClose: the writer's Close is EOF at the reader after all data,
// the reader's Writes then fail with ErrPeerClosed, and a nil Close means
// the peer acknowledged everything.
func TestHalfClose(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{BlockSize: 100}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	data := randomBytes(t, 10_050)
	if _, err := ca.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := ca.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Everything was acknowledged, so it is all buffered at bob's.
	got, err := io.ReadAll(cb)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	if _, err := cb.Write([]byte("x")); !errors.Is(err, ibb.ErrPeerClosed) {
		t.Fatalf("Write after the peer's close: %v, want ErrPeerClosed", err)
	}
	if _, err := ca.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
	if _, err := ca.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
	if err := ca.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if alice.m.Streams() != 0 || bob.m.Streams() != 0 {
		t.Fatalf("streams left: alice %d, bob %d", alice.m.Streams(), bob.m.Streams())
	}
}

// TestCloseUnblocks: Close wakes a blocked Read with net.ErrClosed.
func TestCloseUnblocks(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	errc := make(chan error, 1)
	go func() { _, err := cb.Read(make([]byte, 10)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := cb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read returned %v", err)
	}
	// Alice learns from bob's <close/>.
	if _, err := ca.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("alice's Read: %v", err)
	}
}

func TestReadDeadline(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)

	// A deadline in the past fails at once.
	cb.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Fatalf("past deadline: %v", err)
	}
	// A deadline that passes while Read waits.
	cb.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("Read returned after %v, before its deadline", d)
	}
	// Moving the deadline into the past wakes a waiting Read.
	cb.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := cb.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	cb.SetReadDeadline(time.Now())
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline moved to now: %v", err)
	}
	// Extending the deadline while Read waits keeps it waiting; data wakes it.
	cb.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	type res struct {
		n   int
		err error
	}
	rc := make(chan res, 1)
	go func() { n, err := cb.Read(make([]byte, 10)); rc <- res{n, err} }()
	time.Sleep(10 * time.Millisecond)
	cb.SetReadDeadline(time.Now().Add(10 * time.Second))
	time.Sleep(50 * time.Millisecond)
	if _, err := ca.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if r := <-rc; r.err != nil || r.n != 5 {
		t.Fatalf("Read after extension: %d, %v", r.n, r.err)
	}
	// The stream still works after timeouts; no deadline, no error.
	cb.SetDeadline(time.Time{})
	transfer(t, ca, cb, randomBytes(t, 50_000))
}

// TestWriteDeadline: with the peer's acknowledgements held back, Write
// blocks once the window is full and returns at its deadline.
func TestWriteDeadline(t *testing.T) {
	n, alice, bob := pair(t, &ibb.Method{BlockSize: 10, Window: 2}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	answers := holdAnswers(n, bob.addr, nil)
	answers.hold.Store(true)
	ca.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	nw, err := ca.Write(make([]byte, 100))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Fatalf("Write: %d, %v; want a deadline error", nw, err)
	}
	if nw != 20 {
		t.Fatalf("Write handed over %d bytes, want 20 (window 2 × block 10)", nw)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("Write returned after %v, before its deadline", d)
	}
	// The deadline does not break the stream: the held blocks arrive.
	if got := readN(t, cb, 20); !bytes.Equal(got, make([]byte, 20)) {
		t.Fatal("bad data")
	}
	// Releasing the answers frees the window: Write works again once the
	// deadline is cleared.
	answers.release(t, n, alice.addr)
	ca.SetWriteDeadline(time.Time{})
	transfer(t, ca, cb, randomBytes(t, 1000))
}

// TestLostChunkDetected: a chunk lost on the way, followed by the next
// one, is a gap the receiver sees: it refuses the next chunk with
// unexpected-request, its reader gets what came before and then ErrBroken,
// and the writer's Write or Close reports the loss.
func TestLostChunkDetected(t *testing.T) {
	n, alice, bob := pair(t, &ibb.Method{BlockSize: 10, Window: 4, IQTimeout: 500 * time.Millisecond}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	dropSeq(n, "3")
	_, werr := ca.Write(make([]byte, 100))
	cerr := ca.Close()
	if err := errors.Join(werr, cerr); !errors.Is(err, ibb.ErrBroken) {
		t.Fatalf("writer: %v; want ErrBroken", err)
	}
	got, err := io.ReadAll(cb)
	if !errors.Is(err, ibb.ErrBroken) || len(got) != 30 {
		t.Fatalf("reader: %d bytes then %v; want 30 then ErrBroken", len(got), err)
	}
}

// TestLostChunkUnanswered: a chunk whose answer never comes breaks the
// sender's stream after IQTimeout. The sender does not send <close/> —
// the receiver could not tell it from a clean end — so the receiver's
// reader waits until its transport is closed, and then gets
// ErrTransportClosed, not EOF.
func TestLostChunkUnanswered(t *testing.T) {
	n, alice, bob := pair(t, &ibb.Method{BlockSize: 10, Window: 1, IQTimeout: 200 * time.Millisecond}, &ibb.Method{})
	_, tb, ca, cb := connectTransports(t, alice, bob)
	dropSeq(n, "3")
	_, werr := ca.Write(make([]byte, 100))
	cerr := ca.Close()
	err := errors.Join(werr, cerr)
	if !errors.Is(err, ibb.ErrBroken) || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("writer: %v; want ErrBroken after a timeout", err)
	}
	if got := readN(t, cb, 30); !bytes.Equal(got, make([]byte, 30)) {
		t.Fatal("bad data")
	}
	cb.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reader before its transport closed: %v; want to be still waiting", err)
	}
	cb.SetReadDeadline(time.Time{})
	tb.Close()
	if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, ibb.ErrTransportClosed) {
		t.Fatalf("reader after its transport closed: %v; want ErrTransportClosed", err)
	}
}

// dropSeq makes the network drop the <data/> with the given seq.
func dropSeq(n *xmpptest.Network, seq string) {
	re := regexp.MustCompile(`<data [^>]*seq="(\d+)"`)
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if m := re.FindSubmatch(st); m != nil && string(m[1]) == seq {
			return nil
		}
		return st
	})
}

// TestSeqWrap forces the wrap from 65535 to 0 with a test hook and checks
// the seq values on the wire.
func TestSeqWrap(t *testing.T) {
	n, alice, bob := pair(t, &ibb.Method{BlockSize: 8, Window: 4}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	ibb.SetSeq(ca, 65530, 0)
	ibb.SetSeq(cb, 0, 65530)
	var mu sync.Mutex
	var seqs []int
	re := regexp.MustCompile(`<data [^>]*seq="(\d+)"`)
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if m := re.FindSubmatch(st); m != nil {
			v, _ := strconv.Atoi(string(m[1]))
			mu.Lock()
			seqs = append(seqs, v)
			mu.Unlock()
		}
		return st
	})
	transfer(t, ca, cb, randomBytes(t, 8*12))
	mu.Lock()
	defer mu.Unlock()
	want := []int{65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("seqs on the wire %v, want %v", seqs, want)
	}
}

// TestSeqWrapReal sends more than 65536 chunks of 16 bytes, so the seq
// wraps for real.
func TestSeqWrapReal(t *testing.T) {
	if testing.Short() {
		t.Skip("66 000 IQs")
	}
	n, alice, bob := pair(t, &ibb.Method{BlockSize: 16, Window: 32}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	var zeros atomic.Int32
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if bytes.Contains(st, []byte(`seq="0"`)) {
			zeros.Add(1)
		}
		return st
	})
	transfer(t, ca, cb, randomBytes(t, 65536*16+16*500+7))
	if z := zeros.Load(); z != 2 {
		t.Fatalf("seq 0 sent %d times, want 2", z)
	}
}

// TestBackpressure: a reader slower than the writer, with a receive
// buffer of two blocks, paces the sender without losing anything.
func TestBackpressure(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{BlockSize: 1000, Window: 8}, &ibb.Method{ReadBuffer: 2000})
	ca, cb := connect(t, alice, bob)
	data := randomBytes(t, 50_000)
	errc := make(chan error, 1)
	go func() {
		_, err := ca.Write(data)
		if cerr := ca.Close(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	var got []byte
	buf := make([]byte, 700)
	for {
		time.Sleep(time.Millisecond)
		n, err := cb.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data corrupted")
	}
}

// TestOverflow: a reader that stops reading makes the receiver hold for
// HoldTimeout, then refuse with resource-constraint and break the stream;
// the bytes buffered so far stay readable, then ErrBroken.
func TestOverflow(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{BlockSize: 1000, Window: 4},
		&ibb.Method{ReadBuffer: 3000, HoldTimeout: 100 * time.Millisecond})
	ca, cb := connect(t, alice, bob)
	_, werr := ca.Write(make([]byte, 10_000))
	cerr := ca.Close()
	err := errors.Join(werr, cerr)
	if !errors.Is(err, ibb.ErrBroken) || !errors.Is(err, stanza.Error{Condition: stanza.ResourceConstraint}) {
		t.Fatalf("writer: %v; want ErrBroken with resource-constraint", err)
	}
	got, rerr := io.ReadAll(cb)
	if len(got) != 3000 || !errors.Is(rerr, ibb.ErrBroken) {
		t.Fatalf("reader: %d bytes then %v; want 3000 then ErrBroken", len(got), rerr)
	}
}

// TestTransportCloseKeepsData: closing the Jingle transport after the
// peer closed leaves the received data readable, then EOF.
func TestTransportCloseKeepsData(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{}, &ibb.Method{})
	_, tb, ca, cb := connectTransports(t, alice, bob)
	if _, err := ca.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	tb.Close()
	if got, err := io.ReadAll(cb); string(got) != "kept" || err != nil {
		t.Fatalf("after transport close: %q, %v", got, err)
	}
	// Closing the transport of a stream still open tells the peer.
	ta2, _, ca2, cb2 := connectTransports(t, alice, bob)
	if _, err := ca2.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	readN(t, cb2, 7)
	ta2.Close()
	if _, err := cb2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer after transport close: %v, want EOF (the <close/> arrived)", err)
	}
	if _, err := ca2.Read(make([]byte, 1)); !errors.Is(err, ibb.ErrTransportClosed) {
		t.Fatalf("own conn after transport close: %v", err)
	}
	if _, err := ta2.Dial(tctx(t)); !errors.Is(err, jingle.ErrTransportFailed) && err != nil {
		t.Fatalf("Dial after close: %v", err)
	}
}

// TestAfterReadable: the function runs once a Read would not block — data,
// the read deadline, Close, the peer's <close/> — and not before; stop
// prevents it.
func TestAfterReadable(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{}, &ibb.Method{})
	ca, cb := connect(t, alice, bob)
	fired := make(chan struct{}, 1)
	notify := func() { fired <- struct{}{} }
	wait := func(what string) {
		t.Helper()
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the function did not run", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-fired:
			t.Fatalf("%s: the function ran while a Read would block", what)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Data.
	cb.AfterReadable(notify)
	quiet("no data")
	if _, err := ca.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	wait("data")
	// Data already buffered: at once.
	cb.AfterReadable(notify)
	wait("buffered data")
	if got := readN(t, cb, 5); string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	// Stopped: never.
	stop := cb.AfterReadable(notify)
	if !stop() {
		t.Fatal("stop of an armed function reported false")
	}
	if _, err := ca.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	quiet("stopped")
	if stop() {
		t.Fatal("second stop reported true")
	}
	readN(t, cb, 1)
	// The read deadline passing, by its timer and by moving it.
	cb.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	cb.AfterReadable(notify)
	wait("deadline passed")
	cb.SetReadDeadline(time.Time{})
	cb.AfterReadable(notify)
	quiet("deadline cleared")
	cb.SetReadDeadline(time.Now())
	wait("deadline moved to now")
	cb.SetReadDeadline(time.Time{})
	// The peer's <close/>.
	cb.AfterReadable(notify)
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	wait("peer closed")
	if _, err := cb.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after the peer's close: %v", err)
	}
}

// TestAfterReadableClose: closing the Conn runs the armed function, and a
// function that already ran is not stopped.
func TestAfterReadableClose(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{}, &ibb.Method{})
	_, cb := connect(t, alice, bob)
	fired := make(chan struct{}, 1)
	stop := cb.AfterReadable(func() { fired <- struct{}{} })
	go cb.Close()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not run the function")
	}
	if stop() {
		t.Fatal("stop after the function ran reported true")
	}
}

// TestMaxInFlight: the Method's bytestreams together keep at most
// MaxInFlight data IQs in flight, whatever each one's Window; the others
// wait in Write (here until their deadline) and go out once answers
// come back.
func TestMaxInFlight(t *testing.T) {
	n, alice, bob := pair(t, &ibb.Method{BlockSize: 10, Window: 4, MaxInFlight: 5}, &ibb.Method{})
	var conns [3][2]*ibb.Conn
	for i := range conns {
		conns[i][0], conns[i][1] = connect(t, alice, bob)
	}
	var sent atomic.Int32
	answers := holdAnswers(n, bob.addr, func(from jid.JID, st []byte) {
		if from.Equal(alice.addr) && bytes.Contains(st, []byte("<data ")) {
			sent.Add(1)
		}
	})
	answers.hold.Store(true)
	var wg sync.WaitGroup
	written := make([]int, len(conns))
	for i := range conns {
		ca := conns[i][0]
		ca.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		wg.Go(func() { written[i], _ = ca.Write(make([]byte, 100)) })
	}
	wg.Wait()
	total := 0
	for _, w := range written {
		total += w
	}
	if got := sent.Load(); got != 5 || total != 50 {
		t.Fatalf("%d data IQs sent and %d bytes handed over with the answers held, want 5 and 50 (MaxInFlight 5 × block 10)", got, total)
	}
	answers.release(t, n, alice.addr)
	for i := range conns {
		ca, cb := conns[i][0], conns[i][1]
		readN(t, cb, written[i])
		ca.SetWriteDeadline(time.Time{})
		transfer(t, ca, cb, randomBytes(t, 1000))
	}
}

// answerHolder holds back the IQ results of one peer while hold is set.
type answerHolder struct {
	hold atomic.Bool
	mu   sync.Mutex
	held [][]byte
}

// holdAnswers makes n hold back from's IQ results while the holder's hold
// is set; also, if not nil, sees every stanza first.
func holdAnswers(n *xmpptest.Network, from jid.JID, also func(from jid.JID, st []byte)) *answerHolder {
	h := &answerHolder{}
	n.SetFilter(func(f, to jid.JID, st []byte) []byte {
		if also != nil {
			also(f, st)
		}
		if h.hold.Load() && f.Equal(from) && bytes.Contains(st, []byte(`type="result"`)) {
			h.mu.Lock()
			h.held = append(h.held, st)
			h.mu.Unlock()
			return nil
		}
		return st
	})
	return h
}

// release stops holding and delivers the held answers to to.
func (h *answerHolder) release(t testing.TB, n *xmpptest.Network, to jid.JID) {
	t.Helper()
	h.hold.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.held {
		if err := n.Inject(tctx(t), to, string(st)); err != nil {
			t.Fatal(err)
		}
	}
	h.held = nil
}
