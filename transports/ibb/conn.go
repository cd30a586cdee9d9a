package ibb

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/iqhead"
	"github.com/jinglekit/jinglekit/jingle"
)

// Addr is the address of one end of an IBB bytestream.
type Addr struct {
	JID jid.JID
	SID string
}

// Network implements net.Addr.
func (a Addr) Network() string { return "ibb" }

// String implements net.Addr: the JID, then the sid after a '#'.
func (a Addr) String() string { return a.JID.String() + "#" + a.SID }

// phase is where a bytestream is in its life.
type phase int

const (
	phaseNegotiating phase = iota // Jingle negotiation; no <open/> yet
	phaseOpening                  // our <open/> is on its way
	phaseOpen                     // data may flow
	phaseDone                     // closed, broken or torn down
)

// Conn is one IBB bytestream, a net.Conn. It is what the Jingle session's
// Conn returns for an IBB content.
//
// Write splits the bytes into blocks of the negotiated size and sends each
// as a <data/> IQ; up to the Method's Window of them are in flight at
// once. Write returns once its last block is handed to the XMPP stream —
// like a TCP write, before the peer has acknowledged it. An error answer or
// a missing acknowledgement breaks the stream: later Writes and Close
// report it. Close waits until every block is acknowledged, sends <close/>
// and waits for its answer, so a nil error from Close means the peer has
// all the data.
//
// Read returns the received bytes in order, then io.EOF once the peer has
// closed the bytestream, or an error wrapping ErrBroken if the stream
// broke. Deadlines work as net.Conn documents: an operation blocked past
// its deadline returns an error that is os.ErrDeadlineExceeded.
type Conn struct {
	m      *Method
	cfg    settings
	sender jingle.IQSender
	local  jid.JID
	peer   jid.JID
	sid    string
	opener bool // this side proposed the transport and sends <open/>
	// offered is the block size of this side's <transport/>: its offer or
	// its answer.
	offered int

	ctx    context.Context // ends on teardown: cancels IQs in flight
	cancel context.CancelFunc

	readDL, writeDL *deadline

	// remote is closed when the peer's answer to our offer has been
	// handled (opener only); answerErr says whether it was usable.
	remote    chan struct{}
	answerErr error
	// ready is closed when the stream opens or dies before opening;
	// openErr is why it did not open.
	ready   chan struct{}
	openErr error

	wmu sync.Mutex // one Write at a time, so blocks of two Writes never interleave

	mu         sync.Mutex
	phase      phase
	remoteDone bool
	readyDone  bool
	blockSize  int // in force once open
	// limit is the largest <open/> block-size accepted: the negotiated
	// block size.
	limit int
	// receive side
	rseq    uint16
	rbuf    [][]byte
	rlen    int
	rerr    error // after the buffered data: io.EOF or why the stream broke
	readers int   // Reads waiting for data
	holders int   // data handlers waiting for room
	changed chan struct{}
	// onReadable is the function AfterReadable arranged to call once a
	// Read would not block; nil when none is armed.
	onReadable *readableFunc
	// send side
	wseq        uint16
	werr        error         // why Write fails
	word        uint64        // chunks handed to sendData so far
	sendErr     error         // the first data IQ that failed: data lost
	sendErrOrd  uint64        // its place in the sending order
	lastWritten chan struct{} // closed once the last data IQ is written
	localClosed bool          // Close was called
	peerClosed  bool          // the peer's <close/> arrived
	closeSent   bool          // our <close/> was (or is being) sent
	tornDown    bool
	closing     chan struct{} // closed by Close
	dead        chan struct{} // closed when the stream can no longer carry data
	slots       chan struct{} // one token per data IQ in flight
	flight      chan struct{} // the Method's, shared by its Conns (MaxInFlight)
	inflight    sync.WaitGroup
	bg          sync.WaitGroup // <open/> and abortive <close/> senders
}

func newConn(m *Method, cfg settings, p jingle.TransportParams, limit int) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	close(done)
	c := &Conn{
		m: m, cfg: cfg, sender: p.Stream, local: p.Local, peer: p.Peer,
		opener: p.Offer == nil, offered: limit, limit: limit,
		ctx: ctx, cancel: cancel,
		writeDL: newDeadline(nil),
		remote:  make(chan struct{}), ready: make(chan struct{}),
		changed: make(chan struct{}), lastWritten: done,
		closing: make(chan struct{}), dead: make(chan struct{}),
		slots: make(chan struct{}, cfg.window),
	}
	c.readDL = newDeadline(c.readDeadlinePassed)
	return c
}

func (c *Conn) limitOffered() int { return c.offered }

// SID returns the IBB session id.
func (c *Conn) SID() string { return c.sid }

// BlockSize returns the block size in force (0 before the stream opens).
func (c *Conn) BlockSize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockSize
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return Addr{JID: c.local, SID: c.sid} }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return Addr{JID: c.peer, SID: c.sid} }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDL.set(t)
	c.writeDL.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { c.readDL.set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.writeDL.set(t); return nil }

// broadcastLocked wakes every Read and data handler waiting for a change,
// and starts the function AfterReadable armed if a Read would no longer
// block; c.mu is held.
func (c *Conn) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
	c.fireReadableLocked()
}

// readableFunc is one AfterReadable call's function, until it is started
// or stopped.
type readableFunc struct{ f func() }

// AfterReadable arranges to call f in its own goroutine once a Read would
// not block: received data is buffered, the stream has ended or broken,
// the Conn is closed, or the read deadline has passed. If a Read would not
// block now, f starts at once. Like context.AfterFunc, it returns a
// function that stops the call; stop reports whether it did (false once
// f has been started or stopped already). One call may be armed at a
// time: a new AfterReadable replaces one still armed, which then never
// runs.
//
// It lets a reader that has caught up with the data give up its goroutine
// until more arrives: with thousands of idle bytestreams (issue 17), a
// goroutine blocked in Read on each is most of what they cost.
func (c *Conn) AfterReadable(f func()) (stop func() bool) {
	rf := &readableFunc{f: f}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onReadable = rf
	c.fireReadableLocked()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.onReadable != rf {
			return false
		}
		c.onReadable = nil
		return true
	}
}

// readableLocked reports whether a Read would return without waiting; c.mu
// is held.
func (c *Conn) readableLocked() bool {
	return c.localClosed || c.rlen > 0 || c.rerr != nil || isClosed(c.readDL.wait())
}

// fireReadableLocked starts the armed AfterReadable function if a Read
// would not block; c.mu is held.
func (c *Conn) fireReadableLocked() {
	if c.onReadable == nil || !c.readableLocked() {
		return
	}
	f := c.onReadable.f
	c.onReadable = nil
	go f()
}

// readDeadlinePassed runs when the read deadline passes: an armed
// AfterReadable function starts, since Read no longer blocks.
func (c *Conn) readDeadlinePassed() {
	c.mu.Lock()
	c.fireReadableLocked()
	c.mu.Unlock()
}

// setReadyLocked closes ready once; c.mu is held.
func (c *Conn) setReadyLocked(err error) {
	if c.readyDone {
		return
	}
	c.readyDone = true
	c.openErr = err
	close(c.ready)
}

// killLocked marks the stream unable to carry data: readers get rerr after
// the buffered bytes, writers get werr. The first reasons stay. c.mu is
// held.
func (c *Conn) killLocked(rerr, werr error) {
	if c.rerr == nil {
		c.rerr = rerr
	}
	if c.werr == nil {
		c.werr = werr
	}
	if c.phase != phaseDone {
		c.phase = phaseDone
		close(c.dead)
	}
	c.setReadyLocked(werr)
	c.broadcastLocked()
}

// fail breaks the stream: both directions stop and the stream is
// forgotten. With notify, a <close/> goes to the peer if the stream was
// open and nobody closed it yet, as XEP-0047 §2.2 asks of a receiver that
// saw a bad chunk and of a sender whose chunk was refused.
//
// A chunk that was not answered in time, or a delivery error from the
// servers, does not notify: XEP-0047 §2.2 then leaves it to the
// higher-level session, and a <close/> would make the peer's reader see a
// clean end of stream after a gap it cannot know about. The application's
// Close reports the loss and the Jingle session ends; the peer's reader
// then gets ErrTransportClosed, not io.EOF.
func (c *Conn) fail(err error, notify bool) {
	c.mu.Lock()
	wasOpen := c.phase == phaseOpen
	c.killLocked(err, err)
	sendClose := notify && wasOpen && !c.closeSent && !c.peerClosed && !c.tornDown
	if sendClose {
		c.closeSent = true
		c.bg.Add(1)
	}
	c.mu.Unlock()
	c.m.unregister(c)
	c.cfg.log.Debug("ibb: bytestream broken", "peer", c.peer.String(), "sid", c.sid, "err", err)
	if sendClose {
		go func() {
			defer c.bg.Done()
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.iqTimeout)
			defer cancel()
			_ = c.sendClose(ctx)
		}()
	}
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.localClosed {
			return 0, net.ErrClosed
		}
		if c.rlen > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			n := 0
			for n < len(p) && len(c.rbuf) > 0 {
				k := copy(p[n:], c.rbuf[0])
				n += k
				if k == len(c.rbuf[0]) {
					c.rbuf[0] = nil
					c.rbuf = c.rbuf[1:]
				} else {
					c.rbuf[0] = c.rbuf[0][k:]
				}
			}
			c.rlen -= n
			if len(c.rbuf) == 0 {
				c.rbuf = nil
			}
			if c.holders > 0 {
				c.broadcastLocked()
			}
			return n, nil
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) == 0 {
			return 0, nil
		}
		dl := c.readDL.wait()
		if isClosed(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		ch := c.changed
		c.readers++
		c.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		c.mu.Lock()
		c.readers--
	}
}

// writableLocked says why no more data may be written, if so; c.mu is held.
func (c *Conn) writableLocked() error {
	switch {
	case c.localClosed:
		return net.ErrClosed
	case c.werr != nil:
		return c.werr
	case c.phase != phaseOpen:
		return errors.New("ibb: bytestream not open")
	}
	return nil
}

// Write implements net.Conn.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	err := c.writableLocked()
	bs := c.blockSize
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		dl := c.writeDL.wait()
		if isClosed(dl) {
			return n, os.ErrDeadlineExceeded
		}
		if err := c.acquire(c.slots, dl); err != nil {
			return n, err
		}
		if err := c.acquire(c.flight, dl); err != nil {
			<-c.slots
			return n, err
		}
		k := min(len(p), bs)
		enc := make([]byte, b64.EncodedLen(k))
		b64.Encode(enc, p[:k])
		if err := c.waitWritten(dl); err != nil {
			c.releaseSlots()
			return n, err
		}
		c.mu.Lock()
		if err := c.writableLocked(); err != nil {
			c.mu.Unlock()
			c.releaseSlots()
			return n, err
		}
		seq, ord := c.wseq, c.word
		c.wseq++
		c.word++
		prev := c.lastWritten
		mine := make(chan struct{})
		c.lastWritten = mine
		c.inflight.Add(1)
		c.mu.Unlock()
		go c.sendData(ord, seq, enc, prev, mine)
		n += k
		p = p[k:]
	}
	return n, nil
}

// acquire takes a slot of sem for a data IQ, waiting until one is free,
// the write deadline passes, the Conn is closed or the stream dies.
func (c *Conn) acquire(sem chan struct{}, dl <-chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-dl:
	case <-c.closing:
	case <-c.dead:
	}
	return c.writeStopped(dl)
}

// writeStopped says why a wait of Write ended other than by what it
// waited for: its deadline dl passed, the Conn was closed, or the stream
// died.
func (c *Conn) writeStopped(dl <-chan struct{}) error {
	switch {
	case isClosed(dl):
		return os.ErrDeadlineExceeded
	case isClosed(c.closing):
		return net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writableLocked()
}

// releaseSlots gives back the slots of one data IQ: the Conn's (Window)
// and the Method's (MaxInFlight).
func (c *Conn) releaseSlots() {
	<-c.flight
	<-c.slots
}

// waitWritten waits until the block handed over last is written to the
// XMPP stream (its answer may still be pending), so that at most one block
// of the bytestream waits for the stream's write lock, with its goroutine
// and its encoded copy: with thousands of bytestreams writing at once
// (issue 17's idle case released), blocks queued by the window used to
// pile up by the tens of thousands. The next block is encoded while this
// one is written. Only the Write holding c.wmu hands blocks over.
func (c *Conn) waitWritten(dl <-chan struct{}) error {
	c.mu.Lock()
	prev := c.lastWritten
	c.mu.Unlock()
	select {
	case <-prev:
		return nil
	case <-dl:
	case <-c.closing:
	case <-c.dead:
	}
	return c.writeStopped(dl)
}

// sendData sends one <data/> IQ once the previous one is written, so that
// chunks leave in sequence order while several wait for their answers.
func (c *Conn) sendData(ord uint64, seq uint16, enc []byte, prev <-chan struct{}, mine chan struct{}) {
	defer c.inflight.Done()
	defer c.releaseSlots()
	var once sync.Once
	written := func() { once.Do(func() { close(mine) }) }
	defer written()
	select {
	case <-prev:
	case <-c.ctx.Done():
		c.lost(ord, brokenf("data %d not sent: %v", seq, c.ctx.Err()), false)
		return
	}
	select {
	case <-c.dead:
		c.mu.Lock()
		if c.sendErr == nil || ord < c.sendErrOrd {
			c.sendErr, c.sendErrOrd = fmt.Errorf("ibb: data %d not sent: %w", seq, c.werr), ord
		}
		c.mu.Unlock()
		return
	default:
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.iqTimeout)
	defer cancel()
	out := c.m.Payloads.send(enc)
	r := &dataReader{sid: c.sid, seq: seq, enc: out.text, eof: written}
	resp, err := c.sender.SendIQElement(ctx, r, stanza.IQ{To: c.peer, Type: stanza.SetIQ})
	written()
	if !out.done() && err == nil {
		resp.Close()
		err = errors.New("the stream has no write filter of the Method's Payloads")
	}
	if err != nil {
		c.lost(ord, brokenf("data %d: %v", seq, err), false)
		return
	}
	err = readAnswer(resp, c.peer)
	resp.Close()
	if err != nil {
		c.lost(ord, fmt.Errorf("%w: data %d refused: %w", ErrBroken, seq, err), !deliveryError(err))
	}
}

// lost records that the chunk sent as number ord did not reach the peer
// and breaks the stream. Of several lost chunks, the first sent is the
// one Close reports.
func (c *Conn) lost(ord uint64, err error, notify bool) {
	c.mu.Lock()
	if c.sendErr == nil || ord < c.sendErrOrd {
		c.sendErr, c.sendErrOrd = err, ord
	}
	c.mu.Unlock()
	c.fail(err, notify)
}

// deliveryError reports whether err is an answer about the delivery of a
// stanza rather than about the chunk itself (XEP-0047 §2.2).
func deliveryError(err error) bool {
	var se stanza.Error
	if !errors.As(err, &se) {
		return true // no answer at all
	}
	switch se.Condition {
	case stanza.RecipientUnavailable, stanza.RemoteServerTimeout, stanza.RemoteServerNotFound:
		return true
	}
	return false
}

// dataReader yields one <data/> element and calls eof when it has been
// read to its end: mellium reads a payload while it holds the stream's
// output lock, so when eof runs this IQ is being written and a later IQ
// cannot overtake it.
type dataReader struct {
	sid  string
	seq  uint16
	enc  []byte // base64
	eof  func()
	step int
}

func (r *dataReader) Token() (xml.Token, error) {
	r.step++
	switch r.step {
	case 1:
		return xml.StartElement{Name: DataName, Attr: []xml.Attr{
			{Name: xml.Name{Local: "seq"}, Value: itoa(r.seq)},
			{Name: xml.Name{Local: "sid"}, Value: r.sid},
		}}, nil
	case 2:
		if len(r.enc) > 0 {
			return xml.CharData(r.enc), nil
		}
		r.step++
		fallthrough
	case 3:
		return xml.EndElement{Name: DataName}, nil
	}
	r.eof()
	return nil, io.EOF
}

func itoa(v uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// Close implements net.Conn. It waits until every block written is
// acknowledged, sends <close/> and waits for the answer (each wait bounded
// by the Method's IQTimeout), then releases the stream. It returns nil when
// the peer acknowledged all data, the first error otherwise. Reads and
// Writes blocked in other goroutines return net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.localClosed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.localClosed = true
	close(c.closing)
	c.broadcastLocked()
	c.mu.Unlock()

	// Blocks handed over by Write are answered or fail.
	c.inflight.Wait()
	c.mu.Lock()
	// Whatever the peer acknowledged it has; a chunk it did not is lost.
	err := c.sendErr
	send := c.phase == phaseOpen && !c.closeSent && !c.peerClosed
	if send {
		c.closeSent = true
	}
	c.mu.Unlock()
	if send {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.iqTimeout)
		cerr := c.sendClose(ctx)
		cancel()
		// XEP-0047 §2.3: whatever the answer, both sides consider the
		// stream closed. Only a missing answer is worth reporting.
		var se stanza.Error
		if cerr != nil && !errors.As(cerr, &se) && err == nil {
			err = fmt.Errorf("ibb: close: %w", cerr)
		}
	}
	c.teardown(net.ErrClosed)
	return err
}

// sendClose sends <close/> and waits for the answer.
func (c *Conn) sendClose(ctx context.Context) error {
	el := jingle.MustElement(Close{SID: c.sid})
	resp, err := c.sender.SendIQElement(ctx, el.TokenReader(), stanza.IQ{To: c.peer, Type: stanza.SetIQ})
	if err != nil {
		return err
	}
	defer resp.Close()
	return readAnswer(resp, c.peer)
}

// teardown forgets the stream, stops every goroutine of the Conn and waits
// for them. reason is what Read and Write return from now on (after the
// buffered data for Read) unless they already had a reason.
func (c *Conn) teardown(reason error) {
	c.mu.Lock()
	c.killLocked(reason, reason)
	c.tornDown = true
	c.mu.Unlock()
	c.m.unregister(c)
	c.cancel()
	c.inflight.Wait()
	c.bg.Wait()
	c.readDL.stop()
	c.writeDL.stop()
}

// abort is the transport's Close: if the stream is still open, it tells
// the peer with <close/> (waiting at most a few seconds), then tears the
// stream down. Data already received stays readable.
func (c *Conn) abort() {
	c.mu.Lock()
	send := c.phase == phaseOpen && !c.closeSent && !c.peerClosed
	if send {
		c.closeSent = true
	}
	c.killLocked(ErrTransportClosed, ErrTransportClosed)
	c.mu.Unlock()
	c.cancel() // stop data IQs in flight
	if send {
		ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.iqTimeout, 5*time.Second))
		_ = c.sendClose(ctx)
		cancel()
	}
	c.teardown(ErrTransportClosed)
}

// open sends the <open/> (opener only), in a goroutine of c.bg.
func (c *Conn) open() {
	defer c.bg.Done()
	c.mu.Lock()
	bs := c.blockSize
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.iqTimeout)
	defer cancel()
	el := jingle.MustElement(Open{BlockSize: bs, SID: c.sid, Stanza: StanzaIQ})
	resp, err := c.sender.SendIQElement(ctx, el.TokenReader(), stanza.IQ{To: c.peer, Type: stanza.SetIQ})
	if err == nil {
		err = readAnswer(resp, c.peer)
		resp.Close()
	}
	c.mu.Lock()
	refused := false
	switch {
	case c.phase == phaseOpen:
		// The peer's own <open/> crossed ours and was taken.
	case err != nil:
		err = fmt.Errorf("ibb: open refused: %w", err)
		c.killLocked(err, err)
		refused = true
	case c.phase == phaseOpening:
		c.phase = phaseOpen
		c.setReadyLocked(nil)
		c.broadcastLocked()
	}
	c.mu.Unlock()
	if refused {
		c.m.unregister(c)
	}
}

// readAnswer returns nil for an IQ result and the stanza.Error of an IQ
// error. mellium matches answers by id alone, so the sender is checked: an
// answer from anyone but peer (or the account's server, which sends
// without from) is an error.
func readAnswer(r xml.TokenReader, peer jid.JID) error {
	d := xml.NewTokenDecoder(r)
	h, err := iqhead.ReadAnswer(d, peer)
	if err != nil {
		return fmt.Errorf("ibb: %w", err)
	}
	switch h.Type {
	case "result":
		return nil
	case "error":
	default:
		return fmt.Errorf("ibb: answer of type %q", h.Type)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return stanza.Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition}
		}
		if st, ok := tok.(xml.StartElement); ok && st.Name.Local == "error" {
			var se stanza.Error
			if err := d.DecodeElement(&se, &st); err != nil {
				return fmt.Errorf("ibb: reading error answer: %w", err)
			}
			return se
		}
	}
}

// CloseWrite signals the end of the data written: it is Close, since an
// In-Band Bytestream has no half-close (XEP-0047's <close/> ends both
// directions). It returns once the peer has acknowledged every byte and the
// <close/>. Callers that end their data with CloseWrite (file transfer)
// thereby tell peers that wait for the end of the stream, such as
// Libervia, that the data is complete.
func (c *Conn) CloseWrite() error { return c.Close() }
