package filetransfer

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// engine runs the file transfers of one Jingle session, in either role: it
// owns one worker goroutine per file that moves the bytes. Everything else
// — the session's events, decisions, verification, renaming, signalling —
// happens on the engine's own goroutine (run), so xfer fields need no lock
// unless noted. An idle session thus costs the engine's goroutine and one
// worker per file.
type engine struct {
	s     *jingle.Session
	h     *Handler // nil for a plain Sender: then nothing is accepted from the peer
	log   *slog.Logger
	t     Timeouts
	progr func(Progress)
	done  func(Result) // called for each received file (Handler.Done)
	// later holds the result of the session's last file while run drives
	// the session: it is reported once the session is over (see report).
	running bool
	later   []Result

	files []*xfer

	ctx  context.Context
	stop context.CancelFunc
	msgs chan workerMsg
	wg   sync.WaitGroup
	// sendBufs pools the sending workers' chunk buffers (sendBuf):
	// a sender that waits for its source holds none, and the pool lets
	// the garbage collector take it back meanwhile.
	sendBufs sync.Pool

	// Cancel requests from Progress.Cancel, which must not block.
	cancelMu   sync.Mutex
	cancelReqs []*xfer
	cancelWake chan struct{}

	ended    bool // the session is over
	evsEnded bool // every event of the session was taken
	canceled bool // the caller's context ended
}

type xstate int

const (
	xWaiting  xstate = iota + 1 // offered, waiting for the peer's accept
	xRunning                    // the worker moves data
	xDataDone                   // all data moved; waiting for hash or verdict
	xFinished
)

// xfer is one file of the session.
type xfer struct {
	key  jingle.ContentKey
	send bool // this side sends the data
	ns   string

	name   string // name as offered
	size   int64  // -1 unknown
	offset int64
	length int64 // -1: until the end of the stream

	state   xstate
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the worker exits; nil before it starts
	connMu  sync.Mutex
	conn    net.Conn
	started time.Time
	res     Result

	deadline time.Time      // checksum, verdict or grace deadline
	pending  *TransferError // failure waiting out the grace period
	excess   atomic.Bool    // the worker read bytes beyond the offered size
	moved    atomic.Int64   // bytes the worker sent or received so far

	// encrypted is set when the content has a security layer.
	encrypted bool
	// note is the Result's Note.
	note string

	// receiving
	part      *partFile
	partMeta  partMeta // Fetch: what the .part was recorded for
	overwrite bool
	algos     []string
	expect    []Digest // hash values of the offer
	checksum  []Digest
	gotSum    bool
	computed  []Digest

	// sending
	src       Source
	enc       HashEncoding
	preHashed bool // the offer carried hash values
	peerAck   bool // <received/> seen
	sums      []Digest
}

func (x *xfer) setConn(c net.Conn) {
	x.connMu.Lock()
	x.conn = c
	x.connMu.Unlock()
}

func (x *xfer) closeConn() {
	x.connMu.Lock()
	c := x.conn
	x.connMu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

type msgKind int

const (
	msgDataDone msgKind = iota + 1
	msgFailed
	msgExcess
)

type workerMsg struct {
	x         *xfer
	kind      msgKind
	sums      []Digest
	rangeSums []Digest
	n         int64
	transport string
	err       *TransferError
}

func newEngine(ctx context.Context, s *jingle.Session, h *Handler, log *slog.Logger, t Timeouts, progress func(Progress)) *engine {
	ectx, stop := context.WithCancel(ctx)
	e := &engine{
		s: s, h: h, log: log, t: t.withDefaults(), progr: progress,
		ctx: ectx, stop: stop,
		msgs:       make(chan workerMsg),
		cancelWake: make(chan struct{}, 1),
	}
	if h != nil {
		e.done = h.Done
	}
	return e
}

func (e *engine) add(x *xfer) {
	x.ctx, x.cancel = context.WithCancel(e.ctx)
	x.res = Result{Peer: e.s.Peer(), SID: e.s.SID(), Content: x.key.Name, Name: x.name, Size: x.size, Encrypted: x.encrypted, Note: x.note}
	e.files = append(e.files, x)
}

func (e *engine) find(creator jingle.Creator, name string) *xfer {
	for _, x := range e.files {
		if x.key.Name == name && (creator == "" || x.key.Creator == creator) {
			return x
		}
	}
	return nil
}

// post hands a message to the engine; it gives up when the file or the
// engine is finished.
func (e *engine) post(m workerMsg) {
	select {
	case e.msgs <- m:
	case <-m.x.ctx.Done():
	case <-e.ctx.Done():
	}
}

// run drives the session until every file is finished and the session has
// ended (this side terminates it when needed), then stops the goroutines it
// started. While it waits, its goroutine's stack holds little more than
// step's frame: an idle session's stack stays small.
func (e *engine) run() {
	e.running = true
	defer e.stopWorkers()
	for !e.allFinished() {
		e.step()
	}
	e.end()
}

// stopWorkers stops every worker and the engine's other goroutines, and
// waits for them.
func (e *engine) stopWorkers() {
	for _, x := range e.files {
		x.cancel()
		x.closeConn()
	}
	e.stop()
	e.wg.Wait()
}

// step waits for the next thing to happen — the peer's event, a worker's
// report, a cancel request, a deadline, the caller giving up — and
// handles it.
func (e *engine) step() {
	var timeout <-chan time.Time
	if d, ok := e.nextDeadline(); ok {
		tm := time.NewTimer(time.Until(d))
		defer tm.Stop()
		timeout = tm.C
	}
	var evReady <-chan struct{}
	if !e.evsEnded {
		evReady = e.s.EventReady()
	}
	select {
	case <-evReady:
		e.takeEvent()
	case m := <-e.msgs:
		e.onMsg(m)
	case <-e.cancelWake:
		e.takeCancels()
	case <-timeout:
		e.onTimeout(time.Now())
	case <-e.ctx.Done():
		e.callerGone()
	}
}

// takeEvent handles the session's next event, if any, or its end.
func (e *engine) takeEvent() {
	if ev, ok, err := e.s.TryNextEvent(); err != nil {
		e.evsEnded = true
		e.sessionOver(e.s.Reason(), false)
	} else if ok {
		e.onEvent(ev)
	}
}

// takeCancels fails the files that Progress.Cancel asked to cancel.
func (e *engine) takeCancels() {
	e.cancelMu.Lock()
	reqs := e.cancelReqs
	e.cancelReqs = nil
	e.cancelMu.Unlock()
	for _, x := range reqs {
		e.fail(x, newErr(ErrCanceled, x.key.Name, nil, errors.New("canceled by this side")), true)
	}
}

// callerGone finishes every file when the caller's context ends.
func (e *engine) callerGone() {
	e.canceled = true
	for _, x := range e.files {
		e.finish(x, newErr(ErrCanceled, x.key.Name, nil, context.Cause(e.ctx)))
	}
}

// end runs once every file is finished: it ends the session unless the
// peer did (giving the peer a moment to do it when it is the one to), and
// reports the results held back (see report).
func (e *engine) end() {
	if !e.ended && !e.canceled && e.onlySent() {
		// XEP-0234 §6.7: the last to receive ends the session. Give the
		// receiver a moment to do so after its last <received/>.
		e.linger()
	}
	if !e.ended && e.s.State() != jingle.StateEnded {
		r := jingle.Reason{Condition: jingle.ReasonSuccess}
		if e.canceled || !e.anySuccess() {
			r = jingle.Reason{Condition: jingle.ReasonCancel}
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
		_ = e.s.Terminate(ctx, r)
		cancel()
	}
	for _, r := range e.later {
		e.done(r)
	}
}

// onlySent reports whether this side only sent files and all of them were
// confirmed by the receiver.
func (e *engine) onlySent() bool {
	for _, x := range e.files {
		if !x.send || x.res.Err != nil {
			return false
		}
	}
	return len(e.files) > 0
}

// linger waits up to the grace period for the peer to end the session.
func (e *engine) linger() {
	if e.evsEnded {
		e.ended = true
		return
	}
	tm := time.NewTimer(e.t.Grace)
	defer tm.Stop()
	for {
		select {
		case <-e.s.EventReady():
			ev, ok, err := e.s.TryNextEvent()
			if err != nil || ok && ev.Action == jingle.ActionSessionTerminate {
				e.ended = true
				return
			}
		case <-tm.C:
			return
		case <-e.ctx.Done():
			return
		}
	}
}

func (e *engine) allFinished() bool {
	for _, x := range e.files {
		if x.state != xFinished {
			return false
		}
	}
	return true
}

func (e *engine) anySuccess() bool {
	for _, x := range e.files {
		if x.res.Err == nil {
			return true
		}
	}
	return false
}

func (e *engine) nextDeadline() (time.Time, bool) {
	var d time.Time
	for _, x := range e.files {
		if x.state != xFinished && !x.deadline.IsZero() && (d.IsZero() || x.deadline.Before(d)) {
			d = x.deadline
		}
	}
	return d, !d.IsZero()
}

func (e *engine) onTimeout(now time.Time) {
	for _, x := range e.files {
		if x.state == xFinished || x.deadline.IsZero() || now.Before(x.deadline) {
			continue
		}
		x.deadline = time.Time{}
		switch {
		case x.pending != nil:
			e.fail(x, x.pending, true)
		case x.send && x.state == xRunning:
			e.fail(x, errorf(ErrTimeout, x.key.Name, "the data did not finish within %s of the receiver's success", e.t.Grace), true)
		case x.send:
			e.fail(x, errorf(ErrTimeout, x.key.Name, "no verdict from the receiver within %s", e.t.Verdict), true)
		default:
			e.fail(x, errorf(ErrUnverified, x.key.Name, "no checksum within %s", e.t.Checksum), true)
		}
	}
}

// ctxSend bounds one signalling exchange.
func (e *engine) ctxSend() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(e.ctx), 30*time.Second)
}

// start launches the worker of an accepted file.
func (e *engine) start(x *xfer) {
	x.state = xRunning
	x.started = time.Now()
	x.res.Offset = x.offset
	x.done = make(chan struct{})
	e.wg.Add(1)
	go func() {
		if x.send {
			e.sendData(x)
		} else if !e.recvData(x) {
			return // parked: the worker finishes in another goroutine
		}
		e.workerDone(x)
	}()
}

// workerDone records that the worker of x has exited.
func (e *engine) workerDone(x *xfer) {
	close(x.done)
	e.wg.Done()
}

// stopWorker cancels a file's worker and waits for it to exit.
func (e *engine) stopWorker(x *xfer) {
	x.cancel()
	x.closeConn()
	if x.done != nil {
		<-x.done
	}
}

// finish records a file's outcome.
func (e *engine) finish(x *xfer, err *TransferError) {
	if x.state == xFinished {
		return
	}
	e.stopWorker(x)
	x.state = xFinished
	x.deadline = time.Time{}
	x.res.Bytes = x.moved.Load()
	if !x.started.IsZero() {
		x.res.Duration = time.Since(x.started)
	}
	if err != nil {
		x.res.Err = err
		x.res.Verified = false
	}
	if x.part != nil && !x.part.done {
		// Keep what may be resumed: bytes not known to be wrong.
		keep := err != nil && keepPartial(err.Kind) && (e.h == nil || !e.h.DiscardPartial) && !x.encrypted &&
			(x.part.offset > 0 || x.res.Bytes > 0)
		x.part.abort(keep)
		if keep {
			x.res.Path = x.part.part
		}
	}
	e.log.Debug("filetransfer: file finished", "sid", e.s.SID(), "content", x.key.Name, "send", x.send, "err", x.res.Err)
	if !x.send && e.done != nil {
		e.report(x.res)
	}
}

// report hands a received file's outcome to Handler.Done. The session's
// last file is held until the session-terminate is sent: a program that
// stops when its file arrives (examples/receivefile -once) would
// otherwise end the session with <gone/> before the <success/>, and the
// sender would see the transfer fail (a CI flake of TestReceiveFile).
func (e *engine) report(r Result) {
	if e.running && e.allFinished() {
		e.later = append(e.later, r)
		return
	}
	e.done(r)
}

// keepPartial says whether a .part survives a failure of this kind, for a
// later resume: only when its bytes are not known to be wrong.
func keepPartial(kind error) bool {
	switch kind {
	case ErrTransport, ErrCanceled, ErrTimeout, ErrUnverified, ErrIO:
		return true
	}
	return false
}

// fail finishes a file with an error; with notify, the peer is told by
// content-remove (session-terminate for the last content).
func (e *engine) fail(x *xfer, err *TransferError, notify bool) {
	if x.state == xFinished {
		return
	}
	e.finish(x, err)
	if notify && !e.ended && e.s.State() != jingle.StateEnded {
		r := reasonFor(err)
		ctx, cancel := e.ctxSend()
		defer cancel()
		if rerr := e.s.RemoveContent(ctx, x.key.Name, &r); rerr != nil {
			e.log.Debug("filetransfer: content-remove", "sid", e.s.SID(), "content", x.key.Name, "err", rerr)
		}
	}
}

// onMsg handles what a worker reports.
func (e *engine) onMsg(m workerMsg) {
	x := m.x
	if x.state == xFinished {
		return
	}
	switch m.kind {
	case msgFailed:
		x.res.Bytes = m.n
		if m.transport != "" {
			x.res.Transport = m.transport
		}
		if m.err.Kind == ErrTransport {
			// The peer may be ending the file or the session: give its
			// explanation a moment to arrive before blaming the transport.
			x.pending = m.err
			x.deadline = time.Now().Add(e.t.Grace)
			return
		}
		e.fail(x, m.err, true)
	case msgExcess:
		e.fail(x, errorf(ErrTooLarge, x.key.Name, "the sender sent more than the %d bytes offered", x.size), true)
	case msgDataDone:
		x.res.Bytes = m.n
		x.res.Transport = m.transport
		x.state = xDataDone
		if x.send {
			e.sentAll(x, m.sums, m.rangeSums)
		} else {
			x.computed = m.sums
			e.verify(x)
		}
	}
}

// sentAll runs once the sender has written every byte: it sends the
// checksum (unless the offer carried the hashes) and waits for the verdict.
func (e *engine) sentAll(x *xfer, sums, rangeSums []Digest) {
	x.sums = sums
	x.res.Hashes = sums
	x.res.Hash = strongest(sums)
	if x.preHashed {
		if _, mismatch := compareDigests(sums, x.src.Hashes); mismatch {
			e.fail(x, errorf(ErrHashMismatch, x.key.Name, "the source does not match the hashes it was offered with"), true)
			return
		}
	} else {
		f := File{}
		for _, d := range sums {
			f.Hashes = append(f.Hashes, d.Element(x.enc))
		}
		if len(rangeSums) > 0 {
			r := &Range{}
			if x.offset > 0 {
				r.Offset = int64Ptr(x.offset)
			}
			if x.length >= 0 && x.offset+x.length != x.size {
				r.Length = int64Ptr(x.length)
			}
			for _, d := range rangeSums {
				r.Hashes = append(r.Hashes, d.Element(x.enc))
			}
			f.Range = r
		}
		cs := Checksum{XMLName: xml.Name{Space: x.ns, Local: "checksum"}, Creator: x.key.Creator, Name: x.key.Name, File: f}
		el, err := jingle.NewElement(cs)
		if err != nil {
			e.fail(x, newErr(ErrProtocol, x.key.Name, nil, err), true)
			return
		}
		// The verdict may come before the acknowledgement (or instead of
		// it), so the checksum is sent without holding up the engine.
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
			defer cancel()
			if err := e.s.Info(ctx, el); err != nil {
				e.log.Debug("filetransfer: sending checksum", "sid", e.s.SID(), "content", x.key.Name, "err", err)
			}
		}()
	}
	if x.peerAck {
		e.succeedSend(x)
		return
	}
	x.deadline = time.Now().Add(e.t.Verdict)
}

func (e *engine) succeedSend(x *xfer) {
	x.res.Verified = true
	e.finish(x, nil)
}

// verify compares what the receiver computed with the sender's hashes and
// finishes the file, or waits for the checksum.
func (e *engine) verify(x *xfer) {
	if x.state != xDataDone || x.pending != nil {
		return
	}
	expected := append(slices.Clone(x.expect), x.checksum...)
	matched, mismatch := compareDigests(x.computed, expected)
	switch {
	case mismatch:
		e.fail(x, errorf(ErrHashMismatch, x.key.Name, "the data does not match the sender's hash"), true)
	case len(matched) > 0:
		e.succeedRecv(x, matched)
	case !x.gotSum:
		if x.deadline.IsZero() {
			x.deadline = time.Now().Add(e.t.Checksum)
		}
	default:
		e.fail(x, errorf(ErrUnverified, x.key.Name, "the checksum has no hash of %v", x.algos), true)
	}
}

func (e *engine) succeedRecv(x *xfer, matched []Digest) {
	e.stopWorker(x)
	if x.excess.Load() {
		e.fail(x, errorf(ErrTooLarge, x.key.Name, "the sender sent more than the %d bytes offered", x.size), true)
		return
	}
	path, err := x.part.commit(x.overwrite)
	if err != nil {
		e.fail(x, newErr(ErrIO, x.key.Name, nil, err), true)
		return
	}
	x.res.Path = path
	x.res.Hashes = matched
	x.res.Hash = strongest(matched)
	x.res.Verified = true
	if x.ns != NS3 && !e.lastOpen(x) {
		e.sendReceived(x)
	}
	e.finish(x, nil)
}

// lastOpen reports whether x is the only file not finished: its end ends
// the session, and the session-terminate <success/> that this side then
// sends says all a <received/> would. StanzaJS 12.22.1's action queue stalls
// on a <received/> (it never answers it, nor handles anything after it,
// the session-terminate included, until the peer goes away, and then fails
// the transfer with gone), so <received/> is only sent for a file after
// which the session goes on.
func (e *engine) lastOpen(x *xfer) bool {
	for _, o := range e.files {
		if o != x && o.state != xFinished {
			return false
		}
	}
	return true
}

// sendReceived sends the informational <received/> without waiting for
// its answer: completion, and the session-terminate that follows it on the
// stream, never depend on it. StanzaJS 12.22.1 never answers it (its
// FileTransferSession drops a session-info without hashes), which used to
// hold the terminate for the whole IQ timeout while StanzaJS's action
// queue stalled.
func (e *engine) sendReceived(x *xfer) {
	el, err := jingle.NewElement(Received{XMLName: xml.Name{Space: x.ns, Local: "received"}, Creator: x.key.Creator, Name: x.key.Name})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
		err = e.s.InfoNoWait(ctx, el)
		cancel()
	}
	if err != nil {
		e.log.Debug("filetransfer: sending received", "sid", e.s.SID(), "content", x.key.Name, "err", err)
	}
}

// onEvent handles an action of the peer.
func (e *engine) onEvent(ev jingle.Event) {
	switch ev.Action {
	case jingle.ActionSessionAccept:
		e.onAccept(ev)
	case jingle.ActionSessionInfo:
		for _, p := range ev.Jingle.Info {
			e.onInfo(p)
		}
	case jingle.ActionContentRemove, jingle.ActionContentReject:
		for _, c := range ev.Jingle.Contents {
			x := e.find(c.Key().Creator, c.Name)
			if x == nil || x.state == xFinished {
				continue
			}
			e.peerEnded(x, ev.Reason, ev.Action == jingle.ActionContentReject)
		}
	case jingle.ActionContentAdd:
		e.onContentAdd(ev)
	case jingle.ActionSessionTerminate:
		e.sessionOver(ev.Reason, true)
	}
}

// peerEnded finishes a file the peer removed, rejected or ended with the
// session, reading the peer's reason.
func (e *engine) peerEnded(x *xfer, r *jingle.Reason, rejected bool) {
	success := r != nil && r.Condition == jingle.ReasonSuccess
	switch {
	case x.pending != nil:
		// Our connection broke; the peer says why, unless it says success.
		kind := kindOfReason(r)
		if success {
			kind = x.pending.Kind
		}
		e.finish(x, newErr(kind, x.key.Name, r, x.pending.Err))
		return
	case x.send && x.state == xDataDone && (success || x.peerAck):
		e.succeedSend(x)
		return
	case x.send && x.state == xRunning && success && x.moved.Load() >= x.length:
		// Every byte is written and the receiver is satisfied (it had the
		// hashes in the offer) before our worker reported in: its report
		// is on its way, and then the file succeeds (sentAll). A worker
		// that does not report within the grace period fails the file.
		x.peerAck = true
		x.deadline = time.Now().Add(e.t.Grace)
		return
	case !x.send && x.state == xDataDone:
		// All data is here; whatever hashes there are decide.
		x.gotSum = true
		e.verify(x)
		if x.state != xFinished {
			e.finish(x, errorf(ErrUnverified, x.key.Name, "ended without a checksum"))
		}
		return
	}
	kind := kindOfReason(r)
	switch {
	case rejected, x.state == xWaiting && (success || kind == ErrCanceled):
		kind = ErrDeclined
	case success:
		kind = ErrCanceled // ended before all the data moved
	}
	var cause error
	if r != nil && r.Condition == jingle.ReasonFailedTransport {
		cause = fmt.Errorf("%w: %v", jingle.ErrTransportFailed, r)
	}
	e.finish(x, newErr(kind, x.key.Name, r, cause))
}

// sessionOver finishes every file when the session ends.
func (e *engine) sessionOver(r *jingle.Reason, fromPeer bool) {
	if e.ended {
		return
	}
	e.ended = true
	if r == nil {
		r = e.s.Reason()
	}
	for _, x := range e.files {
		if x.state == xFinished {
			continue
		}
		if !fromPeer && x.pending != nil {
			e.finish(x, x.pending)
			continue
		}
		e.peerEnded(x, r, false)
	}
}

// onInfo handles a session-info payload.
func (e *engine) onInfo(p jingle.Element) {
	if !knownNS(p.Namespace()) {
		return
	}
	switch p.XMLName.Local {
	case "checksum":
		var cs Checksum
		if err := p.Decode(&cs); err != nil {
			e.log.Info("filetransfer: bad checksum", "sid", e.s.SID(), "err", err)
			return
		}
		x := e.find(cs.Creator, cs.Name)
		if cs.Name == "" {
			x = e.onlyReceiving()
		}
		if x == nil || x.send || x.state == xFinished {
			return
		}
		x.gotSum = true
		x.checksum = nil
		for _, h := range cs.File.Hashes {
			if d, _, err := h.Digest(); err == nil {
				x.checksum = append(x.checksum, d)
			}
		}
		e.verify(x)
	case "received":
		var rc Received
		if err := p.Decode(&rc); err != nil {
			return
		}
		x := e.find(rc.Creator, rc.Name)
		if x == nil || !x.send || x.state == xFinished {
			return
		}
		x.peerAck = true
		if x.state == xDataDone && x.pending == nil {
			e.succeedSend(x)
		}
	}
}

// onlyReceiving returns the single unfinished file this side receives, for
// a checksum that does not name its content (:3).
func (e *engine) onlyReceiving() *xfer {
	var found *xfer
	for _, x := range e.files {
		if !x.send && x.state != xFinished {
			if found != nil {
				return nil
			}
			found = x
		}
	}
	return found
}

// onAccept starts the files of a session this side initiated.
func (e *engine) onAccept(ev jingle.Event) {
	accepted := map[jingle.ContentKey]jingle.Content{}
	for _, c := range ev.Jingle.Contents {
		accepted[c.Key()] = c
	}
	for _, x := range e.files {
		if x.state != xWaiting {
			continue
		}
		c, ok := accepted[x.key]
		if !ok {
			e.fail(x, errorf(ErrDeclined, x.key.Name, "the session-accept leaves the file out"), true)
			continue
		}
		var d Description
		if c.Description != nil {
			if err := c.Description.Decode(&d); err != nil {
				e.fail(x, errorf(ErrProtocol, x.key.Name, "accepted description: %v", err), true)
				continue
			}
		}
		var err *TransferError
		if x.send {
			err = e.acceptedSend(x, d.File)
		} else {
			err = e.acceptedRecv(x, d.File)
		}
		if err != nil {
			e.fail(x, err, true)
			continue
		}
		e.start(x)
	}
}

// acceptedSend applies the receiver's range to a file this side offered.
func (e *engine) acceptedSend(x *xfer, f *File) *TransferError {
	if f == nil || f.Range == nil {
		return nil
	}
	terr := x.applyAcceptedRange(f.Range)
	if terr != nil && errors.Is(terr, ErrEncryptedResume) {
		e.log.Info("filetransfer: the receiver asked to resume an encrypted file; refused: "+NoteEncryptedRestart,
			"peer", e.s.Peer().String(), "content", x.key.Name, "offset", f.Range.OffsetValue())
	}
	return terr
}

// applyAcceptedRange is applyRange for the range a receiver accepted an
// offer with. An encrypted file is sent from the first byte or not at all:
// a range that starts later is refused (ErrSecurity, ErrEncryptedResume).
func (x *xfer) applyAcceptedRange(r *Range) *TransferError {
	if off := r.OffsetValue(); x.encrypted && off > 0 {
		return newErr(ErrSecurity, x.key.Name, nil, fmt.Errorf("%w (the receiver asked for byte %d on)", ErrEncryptedResume, off))
	}
	return x.applyRange(r)
}

// applyRange sets the part of the file to send from a requested range.
func (x *xfer) applyRange(r *Range) *TransferError {
	off := r.OffsetValue()
	if off < 0 || off > x.size {
		return errorf(ErrProtocol, x.key.Name, "range offset %d outside the file (%d bytes)", off, x.size)
	}
	x.offset = off
	x.length = x.size - off
	if l, ok := r.LengthValue(); ok {
		if l < 0 || l > x.size-off {
			return errorf(ErrProtocol, x.key.Name, "range length %d outside the file", l)
		}
		x.length = l
	}
	return nil
}

// onContentAdd answers a content the peer adds during the session.
func (e *engine) onContentAdd(ev jingle.Event) {
	for _, c := range ev.Jingle.Contents {
		if e.find(c.Key().Creator, c.Name) != nil {
			continue
		}
		ctx, cancel := e.ctxSend()
		if e.h == nil {
			_ = e.s.RejectContent(ctx, c.Name, &jingle.Reason{Condition: jingle.ReasonDecline})
			cancel()
			continue
		}
		x, answer, terr := e.h.consider(e, c, e.receivingCount())
		if terr != nil {
			r := reasonFor(terr)
			_ = e.s.RejectContent(ctx, c.Name, &r)
			cancel()
			if x != nil {
				e.add(x)
				e.finish(x, terr)
			}
			continue
		}
		e.add(x)
		el, err := jingle.NewElement(answer)
		if err == nil {
			err = e.s.AcceptContent(ctx, c.Name, &el)
		}
		if err != nil {
			cancel()
			e.finish(x, newErr(ErrCanceled, x.key.Name, nil, err))
			continue
		}
		cancel()
		e.start(x)
	}
}

func (e *engine) receivingCount() int {
	n := 0
	for _, x := range e.files {
		if !x.send {
			n++
		}
	}
	return n
}
