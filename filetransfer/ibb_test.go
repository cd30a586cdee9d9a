package filetransfer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/goroutines"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// newIBBPair is newPair over In-Band Bytestreams: the transport whose Conn
// tells when it has data (AfterReadable).
func newIBBPair(t *testing.T, configureBob func(h *filetransfer.Handler)) (*party, *party) {
	t.Helper()
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	alice := newParty(t, n, xmpptest.Alice, x, nil, &ibb.Method{})
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) {
		h.Policy = filetransfer.AcceptAll
		if configureBob != nil {
			configureBob(h)
		}
	}, &ibb.Method{})
	return alice, bob
}

// stallingSource is a file whose reader stops after first bytes until
// release is closed: a slow sender.
func stallingSource(name string, data []byte, first int, release <-chan struct{}) filetransfer.Source {
	src := filetransfer.BytesSource(name, data)
	src.Open = func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(data[:first]), &gatedReader{r: bytes.NewReader(data[first:]), open: release})), nil
	}
	return src
}

type gatedReader struct {
	r    io.Reader
	open <-chan struct{}
}

func (g *gatedReader) Read(b []byte) (int, error) {
	<-g.open
	return g.r.Read(b)
}

// receivingWorkers counts the goroutines that are in a receiving worker.
func receivingWorkers() int {
	return goroutines.In("filetransfer.(*engine).recv", "filetransfer.(*receiving)")
}

// TestIdleIBBReceiverHoldsNoGoroutine: a receiving session over IBB whose
// sender has stopped sending holds no goroutine for its data (issue 17:
// 10,000 idle sessions); the data that follows still arrives whole. Also
// when the Manager has an Observer (jinglectl's agent has one), whose
// wrapper must keep the stream's AfterReadable.
func TestIdleIBBReceiverHoldsNoGoroutine(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testIdleIBBReceiver(t, false) })
	t.Run("observed", func(t *testing.T) { testIdleIBBReceiver(t, true) })
}

// countingObserver counts the bytes an observed stream moves.
type countingObserver struct{ read atomic.Int64 }

func (o *countingObserver) ObserveTransport(e jingle.TransportEvent) { o.read.Add(int64(e.Read)) }

func testIdleIBBReceiver(t *testing.T, observed bool) {
	got4k := make(chan struct{}, 1)
	alice, bob := newIBBPair(t, func(h *filetransfer.Handler) {
		h.Progress = func(p filetransfer.Progress) {
			if !p.Sending && p.Bytes >= 4096 {
				select {
				case got4k <- struct{}{}:
				default:
				}
			}
		}
	})
	var obs countingObserver
	if observed {
		bob.m.Observer = &obs
	}
	data := randomBytes(64<<10, 7)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	type sent struct {
		res []filetransfer.Result
		err error
	}
	done := make(chan sent, 1)
	go func() {
		res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, stallingSource("slow.bin", data, 4096, release))
		done <- sent{res, err}
	}()
	select {
	case <-got4k:
	case <-time.After(30 * time.Second):
		t.Fatal("the first 4 KiB did not arrive")
	}
	// The receiver has caught up with the data: give a worker still on
	// its way out a moment.
	deadline := time.Now().Add(5 * time.Second)
	for receivingWorkers() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := receivingWorkers(); n > 0 {
		t.Fatalf("%d goroutines in the receiving worker of an idle IBB session, want none", n)
	}
	close(release)
	s := <-done
	if s.err != nil {
		t.Fatalf("send: %v", s.err)
	}
	r := bob.result(t)
	if r.Err != nil || !r.Verified || r.Transport != ibb.NSTransport {
		t.Fatalf("receive: %+v", r)
	}
	wantFile(t, r.Path, data)
	if observed && obs.read.Load() != int64(len(data)) {
		t.Fatalf("the observer saw %d bytes read, want %d", obs.read.Load(), len(data))
	}
}

// TestIdleIBBReceiverTimesOut: a parked receiving worker still fails the
// file when no data comes within Timeouts.Idle (its read deadline wakes
// it), and a cancelled session leaves no goroutine behind (TestMain).
func TestIdleIBBReceiverTimesOut(t *testing.T) {
	alice, bob := newIBBPair(t, func(h *filetransfer.Handler) {
		h.Timeouts.Idle = 300 * time.Millisecond
	})
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(tctx(t))
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, _ = filetransfer.Send(ctx, alice.m, bob.jid, stallingSource("stuck.bin", randomBytes(16<<10, 8), 4096, release))
	}()
	r := bob.result(t)
	cancel()
	close(release)
	<-sent
	if !errors.Is(r.Err, filetransfer.ErrTimeout) {
		t.Fatalf("receive: %+v, want a timeout", r)
	}
}

// callCounter counts the Read and Write calls that moved bytes on the
// streams it observes.
type callCounter struct{ reads, writes atomic.Int64 }

func (o *callCounter) ObserveTransport(e jingle.TransportEvent) {
	if e.Read > 0 {
		o.reads.Add(1)
	}
	if e.Written > 0 {
		o.writes.Add(1)
	}
}

// TestIBBBigBlocksOneReadPerBlock: a receiver of 65535-byte IBB blocks
// reads each block that arrives alone in one Read — one write to the
// .part and one hash update — not in a trickle-sized Read and a second
// one for the rest of the block (issue 17: receiver CPU at 65535-byte
// blocks). The sender's Writes are its blocks (each chunk is at most a
// block); a Read may take more than one block, never less than one.
func TestIBBBigBlocksOneReadPerBlock(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	alice := newParty(t, n, xmpptest.Alice, x, nil, &ibb.Method{BlockSize: ibb.MaxBlockSize, Window: 1})
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) {
		h.Policy = filetransfer.AcceptAll
	}, &ibb.Method{})
	var sent, got callCounter
	alice.m.Observer, bob.m.Observer = &sent, &got
	data := randomBytes(2<<20, 11)
	if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("big.bin", data)); err != nil {
		t.Fatalf("send: %v", err)
	}
	r := bob.result(t)
	if r.Err != nil || !r.Verified || r.Transport != ibb.NSTransport {
		t.Fatalf("receive: %+v", r)
	}
	wantFile(t, r.Path, data)
	blocks, reads := sent.writes.Load(), got.reads.Load()
	t.Logf("%d blocks, %d reads", blocks, reads)
	if reads > blocks {
		t.Fatalf("the receiver read %d blocks in %d Reads, want at most one per block", blocks, reads)
	}
}
