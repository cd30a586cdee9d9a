// Package deadline protects a connection carrying an XMPP stream from
// mellium's way of honouring contexts.
//
// mellium.im/xmpp v0.23.0 makes a context cancel a blocked write by setting
// the connection's write deadline to the past when the context ends, then
// back to zero (session.go, setWriteDeadline; setDeadline does the same for
// reads and writes during negotiation). The goroutine that does this races
// with the normal end of the call: when the call's context is cancelled
// right after the call returned — as every `defer cancel()` does — the
// deadline may still be set to the past for a moment, and whatever another
// goroutine writes (or Serve reads) in that moment fails with "i/o timeout".
// That kills the whole stream. It was seen as a flaky test in this project.
//
// A Conn passes deadlines through until Freeze is called — so a login still
// gives up when its context ends — and ignores them afterwards. Blocked
// writes then no longer end early on a cancelled context; callers keep
// their own timeouts on waiting for answers, which mellium implements with
// channels, not deadlines.
//
// xmppclient.Dial wraps its connections so; linklocal and xmpptest, which
// serve streams of their own, do too, and so may any program that runs
// mellium sessions on connections it makes.
package deadline

import (
	"net"
	"sync/atomic"
	"time"
)

// Conn is a net.Conn whose deadlines can be frozen.
type Conn struct {
	net.Conn
	frozen atomic.Bool
}

// Wrap returns c wrapped.
func Wrap(c net.Conn) *Conn { return &Conn{Conn: c} }

// Freeze makes the Set*Deadline methods do nothing from now on, and clears
// any deadline set so far.
func (c *Conn) Freeze() {
	c.frozen.Store(true)
	_ = c.Conn.SetDeadline(time.Time{})
}

// Thaw makes the Set*Deadline methods work again, for a caller that bounds
// a final operation (closing the stream) with deadlines of its own.
func (c *Conn) Thaw() { c.frozen.Store(false) }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.frozen.Load() {
		return nil
	}
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.frozen.Load() {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.frozen.Load() {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}
