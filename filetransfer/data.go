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
// digests cover the whole file in one pass over the source.
func (e *engine) sendData(x *xfer) {
	fail := func(err *TransferError, n int64, ns string) {
		e.post(workerMsg{x: x, kind: msgFailed, err: err, n: n, transport: ns})
	}
	conn, ns, terr := e.connect(x)
	if terr != nil {
		fail(terr, 0, "")
		return
	}
	rc, err := x.src.Open()
	if err != nil {
		fail(errorf(ErrIO, x.key.Name, "opening the source: %v", err), 0, ns)
		return
	}
	defer rc.Close()
	src := io.LimitReader(rc, x.size)
	algos := x.algos
	whole, err := newHashSet(algos)
	if err != nil {
		fail(newErr(ErrProtocol, x.key.Name, nil, err), 0, ns)
		return
	}
	var ranged *hashSet
	if x.offset > 0 || x.length != x.size {
		ranged, _ = newHashSet(algos)
	}
	if x.offset > 0 {
		if n, err := io.CopyN(whole, src, x.offset); err != nil {
			fail(errorf(ErrIO, x.key.Name, "source shorter than offered (%d bytes): %v", n, err), 0, ns)
			return
		}
	}
	hw := io.Writer(whole)
	if ranged != nil {
		hw = io.MultiWriter(whole, ranged)
	}
	e.progress(x, true, 0)
	var sb sendBuf
	var sent int64
	for sent < x.length {
		buf := sb.next()
		n := int64(len(buf))
		if r := x.length - sent; r < n {
			n = r
		}
		k, rerr := io.ReadFull(src, buf[:n])
		if k > 0 {
			hw.Write(buf[:k])
			_ = conn.SetWriteDeadline(time.Now().Add(e.t.Idle))
			w, werr := conn.Write(buf[:k])
			sent += int64(w)
			x.moved.Store(sent)
			if werr != nil {
				kind := ErrTransport
				if x.ctx.Err() != nil {
					kind = ErrCanceled
				}
				fail(newErr(kind, x.key.Name, nil, werr), sent, ns)
				return
			}
			e.progress(x, true, sent)
		}
		if rerr != nil {
			fail(errorf(ErrIO, x.key.Name, "source shorter than offered: %v", rerr), sent, ns)
			return
		}
	}
	// Signal the end of the data where the transport can: our receiver
	// stops at the offered size, but some peers (Libervia) wait for the end
	// of the stream before they check the file.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			e.log.Debug("filetransfer: half-close after the data", "content", x.key.Name, "err", err)
		}
	}
	if rest := x.size - x.offset - x.length; rest > 0 {
		if _, err := io.CopyN(whole, src, rest); err != nil {
			fail(errorf(ErrIO, x.key.Name, "source shorter than offered: %v", err), sent, ns)
			return
		}
	}
	m := workerMsg{x: x, kind: msgDataDone, sums: whole.Sums(), n: sent, transport: ns}
	if ranged != nil {
		m.rangeSums = ranged.Sums()
	}
	e.post(m)
}

// recvData is the receiving worker: it hashes what the .part already holds,
// then reads exactly the expected number of bytes into the .part and the
// hashes — it never waits for the end of the stream when the size is known
// — and then keeps reading only to catch a sender that sends more.
func (e *engine) recvData(x *xfer) {
	fail := func(err *TransferError, n int64, ns string) {
		e.post(workerMsg{x: x, kind: msgFailed, err: err, n: n, transport: ns})
	}
	hs, err := newHashSet(x.algos)
	if err != nil {
		fail(newErr(ErrProtocol, x.key.Name, nil, err), 0, "")
		return
	}
	f := x.part
	if pf := f.f; pf != nil {
		if x.offset > 0 {
			if _, err := io.Copy(hs, io.NewSectionReader(pf, 0, x.offset)); err != nil {
				fail(errorf(ErrIO, x.key.Name, "reading the partial file: %v", err), 0, "")
				return
			}
		}
		if _, err := pf.Seek(x.offset, io.SeekStart); err != nil {
			fail(errorf(ErrIO, x.key.Name, "seeking the partial file: %v", err), 0, "")
			return
		}
	}
	conn, ns, terr := e.connect(x)
	if terr != nil {
		fail(terr, 0, "")
		return
	}
	limit := e.maxSize()
	e.progress(x, false, 0)
	rb := recvBuf{pool: e.bufPool()}
	defer rb.release()
	var got int64
	for x.length < 0 || got < x.length {
		buf := rb.next()
		n := int64(len(buf))
		if x.length >= 0 && x.length-got < n {
			n = x.length - got
		}
		_ = conn.SetReadDeadline(time.Now().Add(e.t.Idle))
		k, rerr := conn.Read(buf[:n])
		if k > 0 {
			if x.length < 0 && x.offset+got+int64(k) > limit {
				x.excess.Store(true)
				e.post(workerMsg{x: x, kind: msgExcess})
				return
			}
			if _, werr := f.Write(buf[:k]); werr != nil {
				fail(errorf(ErrIO, x.key.Name, "writing the partial file: %v", werr), got, ns)
				return
			}
			hs.Write(buf[:k])
			got += int64(k)
			x.moved.Store(got)
			e.progress(x, false, got)
		}
		rb.got(int(n), k) // buf is no longer used
		if rerr != nil {
			if x.length < 0 && errors.Is(rerr, io.EOF) {
				break // size unknown: the end of the stream ends the file
			}
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
			fail(newErr(kind, x.key.Name, nil, fmt.Errorf("after %d of %d bytes: %w", got, x.length, rerr)), got, ns)
			return
		}
	}
	rb.release()
	e.post(workerMsg{x: x, kind: msgDataDone, sums: hs.Sums(), n: got, transport: ns})
	if x.length < 0 {
		return
	}
	// Everything offered has arrived: any further byte is a violation.
	_ = conn.SetReadDeadline(time.Time{})
	var one [1]byte
	for {
		k, err := conn.Read(one[:])
		if k > 0 {
			x.excess.Store(true)
			e.post(workerMsg{x: x, kind: msgExcess})
			return
		}
		if err != nil {
			return
		}
	}
}

// bufPool returns the pool of the receiving workers' chunkSize buffers:
// the Handler's, shared by its sessions; nil without a Handler.
func (e *engine) bufPool() *sync.Pool {
	if e.h == nil {
		return nil
	}
	return &e.h.bufs
}

func (e *engine) maxSize() int64 {
	if e.h == nil {
		return Limits{}.withDefaults().MaxFileSize
	}
	return e.h.Limits.withDefaults().MaxFileSize
}
