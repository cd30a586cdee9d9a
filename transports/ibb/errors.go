package ibb

import (
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"
)

// Errors a caller may branch on. Errors returned by a Conn wrap one of them
// or a stanza.Error the peer answered with.
var (
	// ErrPeerClosed is returned by Write after the peer closed the
	// bytestream (its <close/> arrived); Read returns io.EOF then.
	ErrPeerClosed = errors.New("ibb: bytestream closed by the peer")
	// ErrBroken is wrapped by the error Read and Write return once the
	// bytestream can no longer carry data in order: a chunk was refused
	// or lost, the peer sent one out of sequence or malformed, the receive
	// buffer overflowed, or an acknowledgement did not come in time. Data
	// received before the fault stays readable; then Read returns this
	// error instead of io.EOF, so a truncated stream never looks complete.
	ErrBroken = errors.New("ibb: bytestream broken")
	// ErrTransportClosed is wrapped when the Jingle transport was closed
	// (session ended, content removed, transport replaced) while the
	// bytestream was still open.
	ErrTransportClosed = errors.New("ibb: transport closed")
	// ErrOffer is wrapped by NewTransport and SetRemote errors about a
	// peer's <transport/> that cannot be used: a block-size above 65535 or
	// zero, a raised block-size in an answer, a bad sid or stanza value.
	ErrOffer = errors.New("ibb: unusable transport element")
)

// brokenf returns an error wrapping ErrBroken.
func brokenf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBroken, fmt.Sprintf(format, args...))
}

// refusal is the error answer to a peer's IBB request.
func refusal(typ stanza.ErrorType, cond stanza.Condition, text string) *stanza.Error {
	e := &stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		e.Text = map[string]string{"": text}
	}
	return e
}
