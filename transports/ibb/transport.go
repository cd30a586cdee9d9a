package ibb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// transport is one side of the IBB transport of one content: a
// jingle.StreamTransport around a Conn.
type transport struct {
	c *Conn
}

var _ jingle.StreamTransport = (*transport)(nil)

// Local implements jingle.Transport: the offer, or the answer to the
// peer's offer with the block size this side accepts.
func (t *transport) Local() jingle.Element {
	return jingle.MustElement(Transport{BlockSize: t.c.limitOffered(), SID: t.c.sid})
}

// SetRemote implements jingle.Transport. The peer's answer may lower the
// block size, never raise it, and must keep the sid; then this side sends
// the IBB <open/> (XEP-0261 §2.1). An unusable answer makes Dial fail with
// jingle.ErrTransportFailed.
func (t *transport) SetRemote(ctx context.Context, answer jingle.Element) error {
	c := t.c
	if !c.opener {
		return errors.New("ibb: an answer to the peer's own offer")
	}
	err := c.checkAnswer(answer)
	c.mu.Lock()
	if c.remoteDone {
		c.mu.Unlock()
		return errors.New("ibb: a second answer")
	}
	c.remoteDone = true
	c.answerErr = err
	close(c.remote)
	if err != nil {
		c.killLocked(err, err)
		c.mu.Unlock()
		c.m.unregister(c)
		return err
	}
	bs, _ := parseBlockSize(mustAttr(answer, "block-size"))
	c.limit = bs
	start := false
	switch c.phase {
	case phaseNegotiating:
		c.blockSize = bs
		if !c.tornDown {
			c.phase = phaseOpening
			c.bg.Add(1)
			start = true
		}
	case phaseOpening, phaseOpen:
		c.blockSize = min(c.blockSize, bs)
	}
	c.mu.Unlock()
	if start {
		go c.open()
	}
	return nil
}

func mustAttr(e jingle.Element, local string) string {
	v, _ := e.AttrValue(local)
	return v
}

// checkAnswer validates the peer's answer to this side's offer.
func (c *Conn) checkAnswer(answer jingle.Element) error {
	var a Transport
	if answer.XMLName != TransportName {
		return fmt.Errorf("%w: answer is a %s element", ErrOffer, answer.XMLName.Local)
	}
	if err := answer.Decode(&a); err != nil {
		return fmt.Errorf("%w: %v", ErrOffer, err)
	}
	offered := c.limitOffered()
	bs, ok := parseBlockSize(mustAttr(answer, "block-size"))
	switch {
	case !ok:
		return fmt.Errorf("%w: answer block-size %q", ErrOffer, mustAttr(answer, "block-size"))
	case bs > offered:
		return fmt.Errorf("%w: answer raised block-size from %d to %d", ErrOffer, offered, bs)
	case a.SID != c.sid:
		return fmt.Errorf("%w: answer sid %q, offered %q", ErrOffer, a.SID, c.sid)
	case !validStanza(a.Stanza):
		return fmt.Errorf("%w: answer stanza %q", ErrOffer, a.Stanza)
	}
	return nil
}

// HandleInfo implements jingle.Transport. XEP-0261 §2.3 lets a
// transport-info authorise further IBB sessions in the same content; this
// implementation carries one bytestream per content and declines them (a
// later <open/> for such a sid is refused with not-acceptable).
func (t *transport) HandleInfo(ctx context.Context, info jingle.Element) error {
	return errors.New("ibb: additional IBB sessions in one content are not supported")
}

// Dial implements jingle.StreamTransport: it waits until the bytestream is
// open — our <open/> answered, or the peer's taken — and returns the Conn.
// It waits Method.OpenTimeout at most.
func (t *transport) Dial(ctx context.Context) (net.Conn, error) {
	c := t.c
	tm := time.NewTimer(c.cfg.openTimeout)
	defer tm.Stop()
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-tm.C:
		return nil, fmt.Errorf("%w: ibb: the bytestream %s did not open within %s", jingle.ErrTransportFailed, c.sid, c.cfg.openTimeout)
	}
	c.mu.Lock()
	err := c.openErr
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", jingle.ErrTransportFailed, err)
	}
	return c, nil
}

// Close implements jingle.Transport: a bytestream still open is closed
// (<close/>, waited for a few seconds at most) and everything is released.
// Data already received stays readable from the Conn.
func (t *transport) Close() error {
	t.c.abort()
	return nil
}
