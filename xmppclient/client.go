package xmppclient

import (
	"context"
	"encoding/xml"
	"errors"
	"github.com/jinglekit/jinglekit/xmppclient/deadline"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// DefaultCloseTimeout bounds Client.Close when no other timeout is set.
const DefaultCloseTimeout = 5 * time.Second

// Client owns an XMPP session and the goroutine that serves it.
//
// The session's inbound stanzas go to the handler given to Dial or New. Use
// Session to send; never send from inside that handler (see the package
// documentation). All methods are safe for concurrent use.
type Client struct {
	session      *xmpp.Session
	caps         Caps
	log          *slog.Logger
	mechanism    string
	server       string // the endpoint Dial logged in through
	closeTimeout time.Duration
	raw          *deadline.Conn // the TCP connection under TLS, when Dial made it

	done    chan struct{}
	err     error // set before done is closed
	closing atomic.Bool

	closeOnce sync.Once
	closeErr  error

	iqs IQTracker // the IQs sent with SendIQFunc, until answered
}

// Option configures a Client created by New.
type Option func(*Client)

// WithCaps sets the capabilities that SendPresence advertises. The handler
// should answer disco#info with the same value (HandleDisco).
func WithCaps(c Caps) Option {
	return func(cl *Client) { cl.caps = c }
}

// WithLogger sets the logger of the client. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(cl *Client) {
		if l != nil {
			cl.log = l
		}
	}
}

// WithCloseTimeout bounds Close. Default DefaultCloseTimeout.
func WithCloseTimeout(d time.Duration) Option {
	return func(cl *Client) {
		if d > 0 {
			cl.closeTimeout = d
		}
	}
}

// New takes ownership of an already negotiated session (for example one
// made by xmpp.NewClientSession over a net.Pipe) and serves it with h from a
// goroutine owned by the returned Client. The session must not be
// served by anyone else. Close ends the stream and closes s.Conn().
func New(s *xmpp.Session, h xmpp.Handler, opts ...Option) *Client {
	c := &Client{
		session:      s,
		log:          slog.Default(),
		closeTimeout: DefaultCloseTimeout,
		done:         make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	c.iqs.SetSession(s)
	go c.serve(c.iqs.Handler(h))
	return c
}

func (c *Client) serve(h xmpp.Handler) {
	defer close(c.done)
	err := c.session.Serve(h)
	// Serve has closed the output stream; the connection is ours to close.
	if cerr := c.session.Conn().Close(); cerr != nil {
		c.log.Debug("xmppclient: closing connection", "error", cerr)
	}
	switch {
	case c.closing.Load():
		// Close asked for it; whatever happened while shutting down is
		// reported by Close.
		if err != nil {
			c.log.Debug("xmppclient: stream ended during close", "jid", c.session.LocalAddr().String(), "error", err)
		}
	case err == nil:
		c.err = ErrDisconnected
	default:
		c.err = err
	}
	if c.err != nil {
		c.log.Info("xmppclient: stream ended", "jid", c.session.LocalAddr().String(), "error", c.err)
	}
	// No answer can come any more.
	c.iqs.Close(c.err)
}

// SendIQElement sends an IQ on the session and waits for its answer
// (jingle.IQSender), as the session's SendIQElement does.
func (c *Client) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	return c.session.SendIQElement(ctx, payload, iq)
}

// SendElement sends a stanza without tracking an answer
// (jingle.ElementSender), as the session's SendElement does.
func (c *Client) SendElement(ctx context.Context, r xml.TokenReader, start xml.StartElement) error {
	return c.session.SendElement(ctx, r, start)
}

// SendIQFunc sends an IQ get or set and hands its answer to answer when it
// arrives, with no goroutine waiting for it (jingle.AsyncIQSender); see
// IQTracker.SendIQFunc. When the stream ends, the IQs in flight get an
// error wrapping ErrStreamEnded.
func (c *Client) SendIQFunc(ctx context.Context, payload xml.TokenReader, iq stanza.IQ, wait time.Duration, answer func(xml.TokenReader, error)) error {
	return c.iqs.SendIQFunc(ctx, payload, iq, wait, answer)
}

// Session returns the underlying session, to send stanzas or pass to the
// helpers of this package.
func (c *Client) Session() *xmpp.Session { return c.session }

// LocalAddr returns the full JID the session is bound to.
func (c *Client) LocalAddr() jid.JID { return c.session.LocalAddr() }

// Server returns the endpoint Dial logged in through: the "host:port" of
// Config.Server or Config.Servers it used, or the address an SRV lookup
// led to ("" for a Client made by New).
func (c *Client) Server() string { return c.server }

// Mechanism returns the SASL mechanism Dial authenticated with ("" for a
// Client made by New).
func (c *Client) Mechanism() string { return c.mechanism }

// Caps returns the capabilities this client advertises.
func (c *Client) Caps() Caps { return c.caps }

// Done is closed when the stream has ended and the serving goroutine has
// returned, whether because of Close or not.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the stream is up and after Close ended it; otherwise,
// once Done is closed, why the stream ended (ErrDisconnected if the peer
// closed it cleanly).
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// SendPresence broadcasts available presence with this client's caps
// (XEP-0115).
func (c *Client) SendPresence(ctx context.Context) error {
	return SendCapsPresence(ctx, c.session, jid.JID{}, c.caps)
}

// SendPresenceTo sends directed available presence with this client's caps
// to one entity, eg. a full JID that is not in the roster.
func (c *Client) SendPresenceTo(ctx context.Context, to jid.JID) error {
	return SendCapsPresence(ctx, c.session, to, c.caps)
}

// SendCapsPresence sends available presence carrying the caps element of c
// over s: broadcast when to is the zero JID, directed otherwise.
func SendCapsPresence(ctx context.Context, s *xmpp.Session, to jid.JID, c Caps) error {
	return s.Send(ctx, stanza.Presence{To: to}.Wrap(c.TokenReader()))
}

// Close sends unavailable presence, closes the stream, waits (bounded by the
// close timeout) for the server to close its side and for the serving
// goroutine to return, and closes the connection. Calling Close again returns
// the first result.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Client) close() error {
	c.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	conn := c.session.Conn()
	if c.raw != nil {
		c.raw.Thaw() // the deadlines below must take effect
	}

	var errs []error
	select {
	case <-c.done:
		// The stream is already gone.
	default:
		if err := c.session.Send(ctx, stanza.Presence{Type: stanza.UnavailablePresence}.Wrap(nil)); err != nil &&
			!errors.Is(err, xmpp.ErrOutputStreamClosed) {
			errs = append(errs, err)
		}
		// Session.Close takes no context: bound its write with a deadline.
		// Serve keeps reading until the server closes its stream; the read
		// deadline bounds that wait (Session.SetCloseDeadline would race
		// with Serve).
		_ = conn.SetWriteDeadline(deadline)
		if err := c.session.Close(); err != nil {
			errs = append(errs, err)
		}
		_ = conn.SetReadDeadline(deadline)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		_ = conn.Close()
		<-c.done
	}
	return errors.Join(errs...)
}
