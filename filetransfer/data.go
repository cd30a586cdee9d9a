package filetransfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// errConnectTimeout is the cause of a transport that did not come up in
// time.
var errConnectTimeout = errors.New("filetransfer: connect timeout")

// chunkSize is the size of the reads and writes of the data.
const chunkSize = 64 << 10

// progress reports how a file advances to the Progress callback.
func (e *engine) progress(x *xfer, sending bool, transferred int64) {
	if e.progr == nil {
		return
	}
	el := time.Since(x.started).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(transferred) / el
	}
	e.progr(Progress{
		Peer: e.s.Peer(), SID: e.s.SID(), Content: x.key.Name, Name: x.name, Sending: sending,
		Bytes: x.offset + transferred, Total: x.size, Transferred: transferred, Rate: rate,
		Cancel: func() { e.requestCancel(x) },
	})
}

// requestCancel asks the engine to cancel a file; it never blocks.
func (e *engine) requestCancel(x *xfer) {
	e.cancelMu.Lock()
	e.cancelReqs = append(e.cancelReqs, x)
	e.cancelMu.Unlock()
	select {
	case e.cancelWake <- struct{}{}:
	default:
	}
}

// connect gets the content's stream, within Timeouts.Connect. An
// encrypted content's stream is wrapped by its security layer, told how
// many bytes this side moves.
func (e *engine) connect(x *xfer) (net.Conn, string, *TransferError) {
	ctx, cancel := context.WithTimeoutCause(x.ctx, e.t.Connect, errConnectTimeout)
	defer cancel()
	conn, err := e.s.SecureConn(ctx, x.key.Name, jingle.StreamUse{Sending: x.send, Size: x.length})
	if err != nil {
		switch {
		case x.ctx.Err() != nil:
			return nil, "", newErr(ErrCanceled, x.key.Name, nil, err)
		case errors.Is(context.Cause(ctx), errConnectTimeout):
			return nil, "", errorf(ErrTimeout, x.key.Name, "the transport did not come up within %s (connect timeout)", e.t.Connect)
		case errors.Is(err, jingle.ErrUnsupportedSecurity) || errors.Is(err, jingle.ErrSecured):
			return nil, "", newErr(ErrSecurity, x.key.Name, nil, err)
		}
		return nil, "", newErr(ErrTransport, x.key.Name, nil, err)
	}
	x.setConn(conn)
	ns, _ := e.s.TransportNamespace(x.key.Name)
	return conn, ns, nil
}

// sendData is the sending worker: it hashes the part of the file before
// the range, sends the range while hashing it, and hashes the rest, so the
// digests cover the whole file in one pass over the source. Like
// recvData, its steps are calls of their own, so that while it waits its
// goroutine's stack stays small.
func (e *engine) sendData(x *xfer) {
	conn, ns, terr := e.connect(x)
	if terr != nil {
		e.failed(x, terr, 0, "")
		return
	}
	rc := e.openSource(x, ns)
	if rc == nil {
		return
	}
	defer rc.Close()
	sh := e.sendHashes(x, ns, io.LimitReader(rc, x.size))
	if sh == nil {
		return
	}
	sent, ok := e.sendLoop(x, conn, ns, sh)
	if ok {
		e.sendEnd(x, conn, ns, sh, sent)
	}
}

// openSource opens the file's source; it reports a failure and returns
// nil when it cannot.
func (e *engine) openSource(x *xfer, ns string) io.ReadCloser {
	rc, err := x.src.Open()
	if err == nil && rc == nil {
		err = errors.New("no reader")
	}
	if err != nil {
		e.failed(x, errorf(ErrIO, x.key.Name, "opening the source: %v", err), 0, ns)
		return nil
	}
	return rc
}

// sendHashing is the source of a sending worker and the hashes it feeds.
type sendHashing struct {
	src    io.Reader
	whole  *hashSet
	ranged *hashSet  // of the range sent; nil when it is the whole file
	w      io.Writer // whole, and ranged if any
}

// sendHashes sets up the hashes and hashes the part of the file before the
// range; it reports a failure and returns nil when it cannot.
func (e *engine) sendHashes(x *xfer, ns string, src io.Reader) *sendHashing {
	whole, err := newHashSet(x.algos)
	if err != nil {
		e.failed(x, newErr(ErrProtocol, x.key.Name, nil, err), 0, ns)
		return nil
	}
	sh := &sendHashing{src: src, whole: whole, w: whole}
	if x.offset > 0 || x.length != x.size {
		sh.ranged, _ = newHashSet(x.algos)
		sh.w = io.MultiWriter(whole, sh.ranged)
	}
	if x.offset > 0 {
		if n, err := io.CopyN(whole, src, x.offset); err != nil {
			e.failed(x, errorf(ErrIO, x.key.Name, "source shorter than offered (%d bytes): %v", n, err), 0, ns)
			return nil
		}
	}
	return sh
}

// sendLoop sends the range while hashing it. It returns how many bytes
// it sent, and false when it failed (reported to the engine).
func (e *engine) sendLoop(x *xfer, conn net.Conn, ns string, sh *sendHashing) (int64, bool) {
	e.progress(x, true, 0)
	sb := sendBuf{pool: &e.sendBufs, most: sendChunkLimit(conn)}
	defer sb.done()
	var sent int64
	for sent < x.length {
		buf, rerr := sb.read(sh.src, x.length-sent)
		if k := len(buf); k > 0 {
			sh.w.Write(buf)
			_ = conn.SetWriteDeadline(time.Now().Add(e.t.Idle))
			w, werr := conn.Write(buf)
			sb.done()
			sent += int64(w)
			x.moved.Store(sent)
			if werr != nil {
				e.failed(x, writeConnFailure(x, werr), sent, ns)
				return sent, false
			}
			e.progress(x, true, sent)
		}
		if rerr != nil {
			e.failed(x, shortSource(x, rerr), sent, ns)
			return sent, false
		}
	}
	return sent, true
}

// writeConnFailure is the error of a sending worker whose write failed.
func writeConnFailure(x *xfer, werr error) *TransferError {
	kind := ErrTransport
	if x.ctx.Err() != nil {
		kind = ErrCanceled
	}
	return newErr(kind, x.key.Name, nil, werr)
}

// shortSource is the error of a source that ended before its size.
func shortSource(x *xfer, err error) *TransferError {
	return errorf(ErrIO, x.key.Name, "source shorter than offered: %v", err)
}

// sendEnd runs once the range is sent: it signals the end of the data,
// hashes the rest of the file and reports the hashes to the engine.
func (e *engine) sendEnd(x *xfer, conn net.Conn, ns string, sh *sendHashing, sent int64) {
	// Signal the end of the data where the transport can: our receiver
	// stops at the offered size, but some peers (Libervia) wait for the end
	// of the stream before they check the file.
	if cw, ok := jingle.StreamAs[interface{ CloseWrite() error }](conn); ok {
		if err := cw.CloseWrite(); err != nil {
			e.log.Debug("filetransfer: half-close after the data", "content", x.key.Name, "err", err)
		}
	}
	if rest := x.size - x.offset - x.length; rest > 0 {
		if _, err := io.CopyN(sh.whole, sh.src, rest); err != nil {
			e.failed(x, shortSource(x, err), sent, ns)
			return
		}
	}
	m := workerMsg{x: x, kind: msgDataDone, sums: sh.whole.Sums(), n: sent, transport: ns}
	if sh.ranged != nil {
		m.rangeSums = sh.ranged.Sums()
	}
	e.post(m)
}

// recvData is the receiving worker: it hashes what the .part already holds,
// then reads exactly the expected number of bytes into the .part and the
// hashes — it never waits for the end of the stream when the size is known
// — and then keeps reading only to catch a sender that sends more. Its
// steps are calls of their own, so that while it waits for the peer its
// goroutine's stack holds little more than the waiting step's frame.
//
// On a stream that can say when it has data (readNotifier), the worker
// gives up its goroutine whenever it has caught up with the data, and
// resumes in a new one when more arrives: recvData then returns false,
// and the receiving's wake finishes the worker (see receiving).
func (e *engine) recvData(x *xfer) (finished bool) {
	hs, conn, ns := e.recvSetup(x)
	if conn == nil {
		return true
	}
	r := &receiving{e: e, x: x, conn: conn, ns: ns, hs: hs, limit: e.maxSize(), rb: e.recvBuf()}
	r.notify, _ = jingle.StreamAs[readNotifier](conn)
	e.progress(x, false, 0)
	if r.notify != nil && x.length != 0 {
		return r.park() // nothing to read yet
	}
	return r.resume()
}

// readNotifier is implemented by a stream that can call a function once a
// Read would not block — data, its end, an error or the read deadline —
// as transports/ibb's Conn does. A receiving worker that has caught up
// with the data then holds no goroutine until more arrives: an idle
// session over such a stream costs no reader goroutine (issue 17's 10,000
// idle sessions). Other streams are read by a goroutine blocked in Read.
type readNotifier interface {
	// AfterReadable calls f in its own goroutine once a Read would not
	// block (at once if it would not now); stop cancels that.
	AfterReadable(f func()) (stop func() bool)
}

// receiving is the state of one receiving worker, kept between the
// goroutines it runs in when its stream is a readNotifier.
type receiving struct {
	e      *engine
	x      *xfer
	conn   net.Conn
	notify readNotifier // nil: the worker blocks in Read
	ns     string
	hs     *hashSet
	limit  int64
	rb     recvBuf
	got    int64
	// pipe hashes in a goroutine of its own while a large file streams
	// (nil until then); full says the last Read filled its buffer, so
	// more data is waiting.
	pipe *hashPipe
	full bool
	// watching: every byte offered arrived; the worker only watches for
	// more (a violation).
	watching bool
}

// resume runs the worker until it finishes (true) or parks (false): then
// its stream calls wake once there is something to read.
func (r *receiving) resume() bool {
	if !r.watching {
		st := r.readData()
		if st == stepParked {
			return false
		}
		r.rb.drop()
		if st == stepFailed {
			return true
		}
		r.e.dataDone(r.x, r.hs, r.got, r.ns)
		if r.x.length < 0 {
			return true
		}
		r.watching = true
		_ = r.conn.SetReadDeadline(time.Time{})
		if r.notify != nil {
			return r.park()
		}
	}
	return r.watchExcess()
}

// wake resumes a parked worker, in the goroutine its stream started.
func (r *receiving) wake() {
	if r.resume() {
		r.e.workerDone(r.x)
	}
}

// park hands the worker over to its stream: wake runs once there is
// something to read, or the read deadline (Timeouts.Idle, while data is
// expected) passes. It returns false; nothing of r may be touched after
// it, since wake may already run.
func (r *receiving) park() bool {
	r.rb.drop()
	if !r.watching {
		_ = r.conn.SetReadDeadline(time.Now().Add(r.e.t.Idle))
	}
	r.notify.AfterReadable(r.wake)
	return false
}

// step is how readData ends.
type step int

const (
	stepDone   step = iota // every byte read
	stepFailed             // failed, reported to the engine
	stepParked             // caught up with the data: parked
)

// readData reads the file's bytes into the .part and hs, and reports them
// to the engine. Whatever it returns, the hash pipe is done with hs.
func (r *receiving) readData() step {
	st := r.readLoop()
	if r.pipe != nil {
		if st == stepFailed {
			r.pipe.stop()
		} else {
			r.pipe.wait()
		}
	}
	if st == stepParked {
		r.park()
	}
	return st
}

// readLoop reads until every byte is read, a failure (reported) or, on a
// readNotifier, until it has caught up with the data (stepParked: the
// caller parks the worker).
func (r *receiving) readLoop() step {
	x, e := r.x, r.e
	// A woken worker's first Read does not wait: its stream said so.
	woken := r.notify != nil
	for x.length < 0 || r.got < x.length {
		if r.rb.trickle == 0 {
			r.rb.trickle = recvTrickle(r.conn)
		}
		// While the data streams, it is read into the hash pipe's block.
		piped := r.full && r.pipelined()
		var buf []byte
		if piped {
			r.rb.release()
			buf = r.pipe.space(chunkSize)
		} else {
			buf = r.rb.next()
		}
		n := int64(len(buf))
		if x.length >= 0 && x.length-r.got < n {
			n = x.length - r.got
		}
		if !woken {
			// Keeping the deadline of park for the first Read lets a
			// passed one fail it.
			_ = r.conn.SetReadDeadline(time.Now().Add(e.t.Idle))
		}
		woken = false
		k, rerr := r.conn.Read(buf[:n])
		r.full = int64(k) == n
		if k > 0 && !r.take(buf[:k], piped) {
			return stepFailed
		}
		if !piped {
			r.rb.got(int(n), k) // buf is no longer used
		}
		if int64(k) < n && r.pipe != nil {
			// Caught up: the next Read may wait for the peer, with what
			// was read handed to the hasher and no block held.
			r.pipe.flush()
		}
		if rerr != nil {
			if x.length < 0 && errors.Is(rerr, io.EOF) {
				break // size unknown: the end of the stream ends the file
			}
			e.failed(x, readFailure(x, rerr, r.got), r.got, r.ns)
			return stepFailed
		}
		if int64(k) < n && r.notify != nil && (x.length < 0 || r.got < x.length) {
			// Caught up: the next Read would wait.
			return stepParked
		}
	}
	return stepDone
}

// pipelined says whether the file is large enough to be hashed through a
// hashPipe (pipeMin), and sets the pipe up.
func (r *receiving) pipelined() bool {
	if r.x.length >= 0 && r.x.length < pipeMin || r.x.length < 0 && r.got < pipeMin {
		return false
	}
	if r.pipe == nil {
		var pool *sync.Pool
		if r.e.h != nil {
			pool = &r.e.h.pipeBufs
		}
		r.pipe = newHashPipe(r.hs, pool)
	}
	return true
}

// take writes b, just read, to the .part and hashes it: through the hash
// pipe (piped: b is the pipe's space), or at once, or after what the
// pipe holds. It returns false when it failed (reported to the engine).
func (r *receiving) take(b []byte, piped bool) bool {
	x, e := r.x, r.e
	if x.length < 0 && x.offset+r.got+int64(len(b)) > r.limit {
		e.tooMuch(x)
		return false
	}
	if _, werr := x.part.Write(b); werr != nil {
		e.failed(x, writeFailure(x, werr), r.got, r.ns)
		return false
	}
	switch {
	case piped:
		r.pipe.filled(len(b))
	case r.pipe != nil:
		r.pipe.write(b)
	default:
		r.hs.Write(b)
	}
	r.got += int64(len(b))
	x.moved.Store(r.got)
	e.progress(x, false, r.got)
	return true
}

// failed reports a worker's failure to the engine.
func (e *engine) failed(x *xfer, err *TransferError, n int64, ns string) {
	e.post(workerMsg{x: x, kind: msgFailed, err: err, n: n, transport: ns})
}

// recvSetup hashes what the .part already holds and gets the content's
// stream; it reports a failure and returns a nil conn when it cannot.
func (e *engine) recvSetup(x *xfer) (*hashSet, net.Conn, string) {
	hs, err := newHashSet(x.algos)
	if err != nil {
		e.failed(x, newErr(ErrProtocol, x.key.Name, nil, err), 0, "")
		return nil, nil, ""
	}
	if pf := x.part.f; pf != nil {
		if x.offset > 0 {
			if _, err := io.Copy(hs, io.NewSectionReader(pf, 0, x.offset)); err != nil {
				e.failed(x, errorf(ErrIO, x.key.Name, "reading the partial file: %v", err), 0, "")
				return nil, nil, ""
			}
		}
		if _, err := pf.Seek(x.offset, io.SeekStart); err != nil {
			e.failed(x, errorf(ErrIO, x.key.Name, "seeking the partial file: %v", err), 0, "")
			return nil, nil, ""
		}
	}
	conn, ns, terr := e.connect(x)
	if terr != nil {
		e.failed(x, terr, 0, "")
		return nil, nil, ""
	}
	return hs, conn, ns
}

// tooMuch reports that the sender sent more than it offered.
func (e *engine) tooMuch(x *xfer) {
	x.excess.Store(true)
	e.post(workerMsg{x: x, kind: msgExcess})
}

// dataDone reports that every byte of the file moved.
func (e *engine) dataDone(x *xfer, hs *hashSet, n int64, ns string) {
	e.post(workerMsg{x: x, kind: msgDataDone, sums: hs.Sums(), n: n, transport: ns})
}

// writeFailure is the error of a receiving worker that could not write
// to the .part.
func writeFailure(x *xfer, werr error) *TransferError {
	return errorf(ErrIO, x.key.Name, "writing the partial file: %v", werr)
}

// readFailure is the error of a receiving worker whose read failed after
// got bytes.
func readFailure(x *xfer, rerr error, got int64) *TransferError {
	kind := ErrTransport
	var rr interface{ JingleReason() jingle.Reason }
	switch {
	case x.ctx.Err() != nil:
		kind = ErrCanceled
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		kind = ErrTimeout
	case errors.As(rerr, &rr) && rr.JingleReason().Condition == jingle.ReasonSecurityError:
		// The security layer refused the data (a failed
		// authentication tag): nothing of it is kept.
		kind = ErrSecurity
	}
	return newErr(kind, x.key.Name, nil, fmt.Errorf("after %d of %d bytes: %w", got, x.length, rerr))
}

// watchExcess keeps reading once everything offered has arrived: any
// further byte is a violation. It returns false when it parked.
func (r *receiving) watchExcess() bool {
	var one [1]byte
	for {
		k, err := r.conn.Read(one[:])
		if k > 0 {
			r.e.tooMuch(r.x)
			return true
		}
		if err != nil {
			return true
		}
		if r.notify != nil {
			return r.park()
		}
	}
}

// recvBuf returns a receiving worker's buffers, with the pools of the
// Handler, shared by its sessions (none without a Handler).
func (e *engine) recvBuf() recvBuf {
	if e.h == nil {
		return recvBuf{}
	}
	return recvBuf{pool: &e.h.bufs, smallPool: &e.h.smallBufs}
}

func (e *engine) maxSize() int64 {
	if e.h == nil {
		return Limits{}.withDefaults().MaxFileSize
	}
	return e.h.Limits.withDefaults().MaxFileSize
}
