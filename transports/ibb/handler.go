package ibb

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// Handler returns the mux option that routes XEP-0047 stanzas to m: IQ
// sets carrying <open/>, <data/> or <close/>, and <data/> carried in
// messages of type normal or chat. Add it to the mux next to the
// jingle.Manager's Handler.
func (m *Method) Handler() mux.Option {
	return func(sm *mux.ServeMux) {
		mux.IQ(stanza.SetIQ, OpenName, m)(sm)
		mux.IQ(stanza.SetIQ, DataName, m)(sm)
		mux.IQ(stanza.SetIQ, CloseName, m)(sm)
		mux.Message(stanza.NormalMessage, DataName, m)(sm)
		mux.Message(stanza.ChatMessage, DataName, m)(sm)
	}
}

// HandleIQ implements mux.IQHandler for <open/>, <data/> and <close/>. It
// answers every request itself — a result, or the error XEP-0047
// prescribes — and never returns an error for bad input (that would end
// the XMPP stream). Only a chunk that does not fit in the receive buffer
// makes it wait, at most HoldTimeout (see the package documentation).
func (m *Method) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var e *stanza.Error
	switch {
	case iq.Type != stanza.SetIQ:
		e = refusal(stanza.Cancel, stanza.BadRequest, "IBB requests are IQ sets")
	case start.Name == OpenName:
		e = m.handleOpen(iq.From, start)
	case start.Name == DataName:
		e = m.handleDataIQ(iq.From, start, t)
	case start.Name == CloseName:
		e = m.handleClose(iq.From, start)
	default:
		e = refusal(stanza.Cancel, stanza.FeatureNotImplemented, "")
	}
	if e != nil {
		m.settings().log.Debug("ibb: refused", "from", iq.From.String(), "element", start.Name.Local,
			"sid", attrValue(start, "sid"), "condition", e.Condition, "text", e.Text[""])
	}
	resp := stanza.IQ{ID: iq.ID, To: iq.From, Type: stanza.ResultIQ}
	var payload xml.TokenReader
	if e != nil {
		resp.Type = stanza.ErrorIQ
		payload = e.TokenReader()
	}
	_, err := xmlstream.Copy(t, resp.Wrap(payload))
	return err
}

func attrValue(start *xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// handleOpen checks an <open/>. Only the negotiated peer may open, only
// the sid its transport carries, only once, and with a block-size no
// larger than the one negotiated; anything else changes nothing.
func (m *Method) handleOpen(from jid.JID, start *xml.StartElement) *stanza.Error {
	sid := attrValue(start, "sid")
	c := m.lookup(from, sid)
	if c == nil {
		return refusal(stanza.Cancel, stanza.NotAcceptable, "no bytestream with this sid was negotiated")
	}
	bs, ok := parseBlockSize(attrValue(start, "block-size"))
	if !ok {
		return refusal(stanza.Modify, stanza.BadRequest, "block-size must be an integer from 1 to 65535")
	}
	if !validStanza(attrValue(start, "stanza")) {
		return refusal(stanza.Modify, stanza.BadRequest, "stanza must be iq or message")
	}
	return c.peerOpen(bs)
}

// peerOpen takes the peer's <open/> for this bytestream.
func (c *Conn) peerOpen(bs int) *stanza.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bs > c.limit {
		// XEP-0047 §2.1: a responder that wants smaller chunks says
		// resource-constraint; XEP-0261 §2.1 asks the same when the
		// block-size is not the negotiated one.
		return refusal(stanza.Modify, stanza.ResourceConstraint,
			fmt.Sprintf("block-size %d is above the negotiated %d", bs, c.limit))
	}
	switch c.phase {
	case phaseNegotiating:
		c.blockSize = bs
	case phaseOpening:
		// Our own <open/> crossed the peer's: one stream, the smaller size.
		c.blockSize = min(c.blockSize, bs)
	default:
		return refusal(stanza.Cancel, stanza.NotAcceptable, "bytestream already opened")
	}
	if c.localClosed || c.tornDown {
		return refusal(stanza.Cancel, stanza.NotAcceptable, "bytestream closed")
	}
	c.phase = phaseOpen
	c.setReadyLocked(nil)
	c.broadcastLocked()
	return nil
}

// handleClose takes the peer's <close/>: the reader gets io.EOF after the
// data already received, the writer ErrPeerClosed.
func (m *Method) handleClose(from jid.JID, start *xml.StartElement) *stanza.Error {
	c := m.lookup(from, attrValue(start, "sid"))
	if c == nil {
		return refusal(stanza.Cancel, stanza.ItemNotFound, "no such bytestream")
	}
	c.mu.Lock()
	if c.phase != phaseOpen {
		c.mu.Unlock()
		return refusal(stanza.Cancel, stanza.ItemNotFound, "bytestream not open")
	}
	c.peerClosed = true
	c.killLocked(io.EOF, ErrPeerClosed)
	c.mu.Unlock()
	m.unregister(c)
	return nil
}

// handleDataIQ takes a <data/> carried in an IQ.
func (m *Method) handleDataIQ(from jid.JID, start *xml.StartElement, r xml.TokenReader) *stanza.Error {
	sid := attrValue(start, "sid")
	c := m.lookup(from, sid)
	if c == nil {
		return refusal(stanza.Cancel, stanza.ItemNotFound, "no such bytestream")
	}
	bs, open := c.openBlockSize()
	if !open {
		return refusal(stanza.Cancel, stanza.ItemNotFound, "bytestream not open")
	}
	seq, ok := parseSeq(attrValue(start, "seq"))
	if !ok {
		c.fail(brokenf("chunk with seq %q", attrValue(start, "seq")), true)
		return refusal(stanza.Cancel, stanza.BadRequest, "seq must be an integer from 0 to 65535")
	}
	b64, tooBig, err := readPayload(r, payloadLimit(bs))
	if err != nil {
		c.fail(brokenf("chunk %d: %v", seq, err), true)
		return refusal(stanza.Cancel, stanza.BadRequest, err.Error())
	}
	return c.deliver(seq, m.claim(b64, tooBig, bs))
}

// HandleMessage implements mux.MessageHandler for <data/> carried in a
// message (XEP-0047 §4). There is nobody to answer: a bad chunk breaks
// the stream, which sends <close/>. A message with more than one <data/>
// is ignored, since the mux calls this handler once per child.
func (m *Method) HandleMessage(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	var v struct {
		Data []struct {
			Seq     string `xml:"seq,attr"`
			SID     string `xml:"sid,attr"`
			Payload []byte `xml:",chardata"`
			Inner   []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"http://jabber.org/protocol/ibb data"`
	}
	log := m.settings().log
	if err := xml.NewTokenDecoder(t).Decode(&v); err != nil {
		log.Debug("ibb: malformed data message", "from", msg.From.String(), "err", err)
		return nil
	}
	if len(v.Data) != 1 {
		log.Debug("ibb: message with several data elements ignored", "from", msg.From.String())
		return nil
	}
	d := v.Data[0]
	c := m.lookup(msg.From, d.SID)
	if c == nil {
		log.Debug("ibb: data message for an unknown bytestream", "from", msg.From.String(), "sid", d.SID)
		return nil
	}
	bs, open := c.openBlockSize()
	if !open {
		return nil
	}
	seq, ok := parseSeq(d.Seq)
	switch {
	case !ok:
		c.fail(brokenf("chunk with seq %q", d.Seq), true)
	case len(d.Inner) > 0:
		c.fail(brokenf("chunk %d has child elements", seq), true)
	default:
		if e := c.deliver(seq, m.claim(d.Payload, len(d.Payload) > payloadLimit(bs), bs)); e != nil {
			log.Debug("ibb: data message refused", "from", msg.From.String(), "sid", d.SID, "condition", e.Condition, "text", e.Text[""])
		}
	}
	return nil
}

// chunk is the payload of a <data/> for deliver.
type chunk struct {
	b       []byte // base64, or the bytes when decoded
	decoded bool
	tooBig  bool // b is nil: more than the block size
}

// claim returns the chunk of a <data/> with text, replaced by the payload
// it refers to when Payloads took it out of the stream (see Payloads),
// and applies the block size bs to that payload.
func (m *Method) claim(text []byte, tooBig bool, bs int) chunk {
	if tooBig {
		return chunk{tooBig: true}
	}
	p, ok := m.Payloads.take(text)
	switch {
	case !ok:
		return chunk{b: text}
	case p.decoded && len(p.b) > bs, !p.decoded && len(p.b) > payloadLimit(bs):
		return chunk{tooBig: true}
	}
	return chunk{b: p.b, decoded: p.decoded}
}

// payloadLimit is the most text of a <data/> kept for decoding with block
// size bs: its base64 length, doubled for white space (a payload wrapped
// at 76 columns and indented needs a few percent more), plus some slack.
// The exact check — at most bs bytes — comes after decoding.
func payloadLimit(bs int) int { return 2*base64.StdEncoding.EncodedLen(bs) + 1024 }

// errChildElement is returned by readPayload for a <data/> with children.
var errChildElement = errors.New("data element has child elements")

// readPayload reads the character data of a <data/> whose start tag has
// been read, up to its end tag. It keeps at most limit bytes; tooBig
// reports that there were more.
func readPayload(r xml.TokenReader, limit int) (b64 []byte, tooBig bool, err error) {
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return b64, tooBig, nil
		}
		if err != nil {
			return nil, false, err
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if tooBig {
				continue
			}
			if len(b64)+len(tok) > limit {
				tooBig, b64 = true, nil
				continue
			}
			if b64 == nil {
				b64 = make([]byte, 0, len(tok))
			}
			b64 = append(b64, tok...)
		case xml.StartElement:
			return nil, false, errChildElement
		case xml.EndElement:
			return b64, tooBig, nil
		}
	}
}

// openBlockSize returns the block size in force and whether the stream is
// open.
func (c *Conn) openBlockSize() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockSize, c.phase == phaseOpen
}

// deliver takes one chunk from the peer: checks its sequence number, size
// and encoding, and appends it to the receive buffer. Any fault breaks the
// stream (XEP-0047 §2.2: the data of an out-of-sequence chunk and of all
// that follow must not be processed; the stream is closed). It runs on
// the XMPP stream's handler goroutine.
func (c *Conn) deliver(seq uint16, ch chunk) *stanza.Error {
	c.mu.Lock()
	if c.phase != phaseOpen {
		c.mu.Unlock()
		return refusal(stanza.Cancel, stanza.ItemNotFound, "bytestream not open")
	}
	want, bs := c.rseq, c.blockSize
	c.mu.Unlock()
	if seq != want {
		c.fail(brokenf("chunk %d arrived, %d expected", seq, want), true)
		return refusal(stanza.Cancel, stanza.UnexpectedRequest, fmt.Sprintf("seq %d, expected %d", seq, want))
	}
	if ch.tooBig {
		c.fail(brokenf("chunk %d larger than the block size %d", seq, bs), true)
		return refusal(stanza.Cancel, stanza.BadRequest, fmt.Sprintf("chunk larger than the block size %d", bs))
	}
	data := ch.b
	if !ch.decoded {
		var err error
		if data, err = DecodeBase64(nil, ch.b); err != nil {
			c.fail(brokenf("chunk %d: %v", seq, err), true)
			return refusal(stanza.Cancel, stanza.BadRequest, err.Error())
		}
	}
	if len(data) > bs {
		c.fail(brokenf("chunk %d larger than the block size %d", seq, bs), true)
		return refusal(stanza.Cancel, stanza.BadRequest, fmt.Sprintf("chunk larger than the block size %d", bs))
	}

	c.mu.Lock()
	if c.phase != phaseOpen || c.rseq != seq {
		c.mu.Unlock()
		return refusal(stanza.Cancel, stanza.ItemNotFound, "bytestream not open")
	}
	c.rseq++
	if c.localClosed || len(data) == 0 {
		// Closing: the reader is gone; take the chunk and drop it.
		c.mu.Unlock()
		return nil
	}
	if !c.roomLocked(len(data)) {
		// Backpressure: hold the handler — and with it the XMPP stream,
		// and so the peer's acknowledgements — until the reader drains.
		timer := time.NewTimer(c.cfg.hold)
		for !c.roomLocked(len(data)) && c.phase == phaseOpen && !c.localClosed {
			ch := c.changed
			c.holders++
			c.mu.Unlock()
			expired := false
			select {
			case <-ch:
			case <-timer.C:
				expired = true
			}
			c.mu.Lock()
			c.holders--
			if expired {
				break
			}
		}
		timer.Stop()
		switch {
		case c.phase != phaseOpen:
			c.mu.Unlock()
			return refusal(stanza.Cancel, stanza.ItemNotFound, "bytestream not open")
		case c.localClosed:
			c.mu.Unlock()
			return nil
		case !c.roomLocked(len(data)):
			c.mu.Unlock()
			c.fail(brokenf("receive buffer full (%d bytes) for %v", c.cfg.readBuffer, c.cfg.hold), true)
			return refusal(stanza.Wait, stanza.ResourceConstraint, "receive buffer full")
		}
	}
	c.rbuf = append(c.rbuf, data)
	c.rlen += len(data)
	if c.readers > 0 {
		c.broadcastLocked()
	} else {
		c.fireReadableLocked()
	}
	c.mu.Unlock()
	return nil
}

// roomLocked reports whether n more bytes fit in the receive buffer. An
// empty buffer takes any chunk, so a buffer smaller than a block works.
func (c *Conn) roomLocked(n int) bool {
	return c.rlen == 0 || c.rlen+n <= c.cfg.readBuffer
}
