package linklocal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/jinglekit/jinglekit/xmppclient"
)

// Namespaces of the stream layer.
const (
	NSStream = "http://etherx.jabber.org/streams"
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
)

// Errors of stream negotiation. Each is wrapped together with the
// stream.Error condition that was sent or received, so errors.Is works
// with both (errors.Is(err, stream.InvalidFrom)).
var (
	// ErrNotStream: the first element from the peer was not a stream
	// header (or the bytes were not XML at all).
	ErrNotStream = errors.New("linklocal: peer did not open an XMPP stream")
	// ErrInvalidFrom: the name in the stream header is not one the
	// connecting address may claim (XEP-0174 §7), or is missing.
	ErrInvalidFrom = errors.New("linklocal: stream 'from' not accepted")
	// ErrWrongPeer: the peer dialled answered under another name, or
	// addressed its stream to someone else.
	ErrWrongPeer = errors.New("linklocal: peer answered as someone else")
	// ErrRefused: the peer refused the stream with a stream error.
	ErrRefused = errors.New("linklocal: stream refused by peer")
	// ErrTLSRequired: the peer requires STARTTLS, which this package does
	// not offer on link-local streams.
	ErrTLSRequired = errors.New("linklocal: peer requires TLS")
	// ErrHeaderTooLarge: the peer sent more than Limits.MaxHeaderBytes
	// before the stream was open.
	ErrHeaderTooLarge = errors.New("linklocal: stream header too large")
)

// header is a stream header (RFC 6120 §4.7) as XEP-0174 §4 uses it.
type header struct {
	From, To jid.JID
	HasFrom  bool
	HasTo    bool
	Version  string // "" when absent (a pre-1.0 peer, such as libpurple)
	ID       string
}

// v1 reports whether the header announces XMPP 1.0 (stream features follow).
func (h header) v1() bool { return strings.HasPrefix(h.Version, "1.") }

// writeHeader writes an XML declaration and an opening stream header.
func writeHeader(w io.Writer, from, to jid.JID, version bool, id string) error {
	var b bytes.Buffer
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'`)
	attr := func(name, value string) {
		b.WriteString(" " + name + "='")
		_ = xml.EscapeText(&b, []byte(value))
		b.WriteString("'")
	}
	if s := from.String(); s != "" {
		attr("from", s)
	}
	if s := to.String(); s != "" {
		attr("to", s)
	}
	if version {
		attr("version", "1.0")
	}
	if id != "" {
		attr("id", id)
	}
	b.WriteString(">")
	_, err := w.Write(b.Bytes())
	return err
}

// streamErr pairs a negotiation error with the stream error condition to
// send (or that was received).
func streamErr(kind error, cond stream.Error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", kind, cond, fmt.Sprintf(format, args...))
}

// condition returns the stream error condition err carries, or
// undefined-condition.
func condition(err error) stream.Error {
	var se stream.Error
	if errors.As(err, &se) {
		return stream.Error{Err: se.Err}
	}
	if errors.Is(err, ErrHeaderTooLarge) {
		return stream.PolicyViolation
	}
	return stream.UndefinedCondition
}

// readHeader reads the peer's opening stream header: an XML declaration
// and white space may come first, anything else is an error carrying the
// condition RFC 6120 §4.9.3 asks for. A stream error in place of the
// header is returned wrapped in ErrRefused.
func readHeader(r xml.TokenReader) (header, error) {
	first := true
	for {
		tok, err := r.Token()
		if err != nil {
			if errors.Is(err, ErrHeaderTooLarge) {
				return header{}, err
			}
			var se *xml.SyntaxError
			if errors.As(err, &se) || errors.Is(err, errNotXML) {
				return header{}, streamErr(ErrNotStream, stream.NotWellFormed, "%v", err)
			}
			return header{}, fmt.Errorf("%w: %w", ErrNotStream, err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return header{}, streamErr(ErrNotStream, stream.RestrictedXML, "processing instruction <?%s?>", t.Target)
			}
		case xml.CharData:
			if len(bytes.TrimLeft(t, " \t\r\n")) != 0 {
				return header{}, streamErr(ErrNotStream, stream.NotWellFormed, "text %q before the stream header", clip(string(t)))
			}
		case xml.Comment, xml.Directive:
			return header{}, streamErr(ErrNotStream, stream.RestrictedXML, "comment or directive before the stream header")
		case xml.StartElement:
			if t.Name.Space == NSStream && t.Name.Local == "error" {
				var se stream.Error
				if err := decodeElement(r, t, &se); err != nil {
					return header{}, fmt.Errorf("%w: malformed stream error: %w", ErrRefused, err)
				}
				return header{}, fmt.Errorf("%w: %w", ErrRefused, se)
			}
			if t.Name.Space != NSStream || t.Name.Local != "stream" {
				return header{}, streamErr(ErrNotStream, stream.InvalidNamespace, "first element is <%s xmlns='%s'>, not a stream header", clip(t.Name.Local), clip(t.Name.Space))
			}
			return parseHeader(t)
		case xml.EndElement:
			return header{}, streamErr(ErrNotStream, stream.NotWellFormed, "end element before the stream header")
		}
		first = false
	}
}

// parseHeader reads the attributes of a stream header.
func parseHeader(t xml.StartElement) (header, error) {
	var h header
	xmlns := ""
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			xmlns = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			j, err := jid.Parse(a.Value)
			if err != nil {
				return header{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "from %q: %v", clip(a.Value), err)
			}
			h.From, h.HasFrom = j, true
		case a.Name.Space == "" && a.Name.Local == "to":
			j, err := jid.Parse(a.Value)
			if err != nil {
				return header{}, streamErr(ErrWrongPeer, stream.HostUnknown, "to %q: %v", clip(a.Value), err)
			}
			h.To, h.HasTo = j, true
		case a.Name.Space == "" && a.Name.Local == "version":
			h.Version = a.Value
		case a.Name.Space == "" && a.Name.Local == "id":
			h.ID = a.Value
		}
	}
	// encoding/xml turns xmlns='jabber:client' into the element's default
	// namespace; only the stream element's own name is namespaced, so the
	// content namespace is the xmlns attribute.
	if xmlns != stanza.NSClient {
		return header{}, streamErr(ErrNotStream, stream.InvalidNamespace, "content namespace %q, want %q", clip(xmlns), stanza.NSClient)
	}
	if h.Version != "" && !h.v1() {
		if major, _, _ := strings.Cut(h.Version, "."); major == "0" {
			h.Version = "" // a pre-1.0 stream: no features
		} else {
			return header{}, streamErr(ErrNotStream, stream.UnsupportedVersion, "version %q", clip(h.Version))
		}
	}
	return h, nil
}

// features mirrors the <stream:features/> a link-local peer sends: maybe
// STARTTLS, and the disco#info the XEP-0174 §8 optimisation recommends.
type features struct {
	XMLName  xml.Name `xml:"http://etherx.jabber.org/streams features"`
	StartTLS *struct {
		Required *struct{} `xml:"required"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Disco *discoQuery `xml:"http://jabber.org/protocol/disco#info query"`
}

// discoQuery mirrors a disco#info <query/>.
type discoQuery struct {
	Node       string                `xml:"node,attr,omitempty"`
	Identities []xmppclient.Identity `xml:"identity"`
	Features   []struct {
		Var string `xml:"var,attr"`
	} `xml:"feature"`
	Forms []xmppclient.Form `xml:"jabber:x:data x"`
}

func (q discoQuery) info() xmppclient.Info {
	i := xmppclient.Info{Node: q.Node, Identities: q.Identities, Forms: q.Forms}
	for _, f := range q.Features {
		i.Features = append(i.Features, f.Var)
	}
	return i
}

// readFeatures reads <stream:features/> (a stream error in its place is
// returned wrapped in ErrRefused).
func readFeatures(r xml.TokenReader) (features, error) {
	for {
		tok, err := r.Token()
		if err != nil {
			return features{}, fmt.Errorf("linklocal: reading stream features: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimLeft(t, " \t\r\n")) != 0 {
				return features{}, streamErr(ErrNotStream, stream.NotWellFormed, "text in place of stream features")
			}
		case xml.StartElement:
			switch {
			case t.Name.Space == NSStream && t.Name.Local == "error":
				var se stream.Error
				if err := decodeElement(r, t, &se); err != nil {
					return features{}, fmt.Errorf("%w: malformed stream error: %w", ErrRefused, err)
				}
				return features{}, fmt.Errorf("%w: %w", ErrRefused, se)
			case t.Name.Space == NSStream && t.Name.Local == "features":
				var f features
				if err := decodeElement(r, t, &f); err != nil {
					return features{}, streamErr(ErrNotStream, stream.BadFormat, "malformed stream features: %v", err)
				}
				return f, nil
			default:
				return features{}, streamErr(ErrNotStream, stream.BadFormat, "<%s xmlns='%s'> in place of stream features", clip(t.Name.Local), clip(t.Name.Space))
			}
		default:
			return features{}, streamErr(ErrNotStream, stream.BadFormat, "unexpected %T in place of stream features", tok)
		}
	}
}

// decodeElement decodes the element that start opened, reading the rest of
// it from r. (DecodeElement on a decoder wrapping r cannot be used: it
// fails, or panics for an xml.Unmarshaler, without the start on its stack.)
func decodeElement(r xml.TokenReader, start xml.StartElement, v any) error {
	return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start), xmlstream.InnerElement(r))).Decode(v)
}

// writeFeatures writes <stream:features/> with the disco#info of info,
// for the node nodeVer (XEP-0174 §8).
func writeFeatures(w io.Writer, info xmppclient.Info) error {
	e := xml.NewEncoder(w)
	start := xml.StartElement{Name: xml.Name{Space: NSStream, Local: "features"}}
	if _, err := xmlstream.Copy(e, xmlstream.Wrap(info.TokenReader(), start)); err != nil {
		return err
	}
	return e.Flush()
}

// writeStreamError writes a stream error and the closing stream tag.
func writeStreamError(w io.Writer, cond stream.Error, text string) error {
	if text != "" {
		cond.Text = []struct {
			Lang  string
			Value string
		}{{Value: text}}
	}
	e := xml.NewEncoder(w)
	if _, err := cond.WriteXML(e); err != nil {
		return err
	}
	if err := e.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "</stream:stream>")
	return err
}

// setInfo fills the session's stream information once both headers have
// been exchanged: in is the peer's stream to us, out ours to the peer.
func setInfo(in, out *stream.Info, local, peer jid.JID, inID, outID string) {
	name := xml.Name{Space: NSStream, Local: "stream"}
	*in = stream.Info{Name: name, XMLNS: stanza.NSClient, To: local, From: peer, ID: inID, Version: stream.DefaultVersion}
	*out = stream.Info{Name: name, XMLNS: stanza.NSClient, To: peer, From: local, ID: outID, Version: stream.DefaultVersion}
}

// acceptConfig is what the receiving side of a stream needs.
type acceptConfig struct {
	// ctx bounds the negotiation (mellium's is not used, see bound).
	ctx   context.Context
	local jid.JID
	// authorize decides who the stream is from (XEP-0174 §7). It returns
	// an error carrying a stream.Error condition to refuse.
	authorize func(ctx context.Context, h header) (jid.JID, error)
	info      xmppclient.Info // sent in the stream features
	// peer receives the accepted peer's name.
	peer *jid.JID
}

// acceptNegotiator is the receiving side of XEP-0174 §4: read the peer's
// header, check it, answer with ours (and stream features when both sides
// speak XMPP 1.0). No TLS, SASL or resource binding. A refusal sends a
// header (RFC 6120 §4.9.1.3: before an error, a header) and the stream
// error, and returns the error; the caller closes the connection.
func acceptNegotiator(cfg acceptConfig) xmpp.Negotiator {
	return func(_ context.Context, in, out *stream.Info, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		ctx := cfg.ctx
		conn := s.Conn()
		r := s.TokenReader()
		defer r.Close()
		id := randomID()
		refuse := func(err error) (xmpp.SessionState, io.ReadWriter, any, error) {
			if werr := writeHeader(conn, cfg.local, jid.JID{}, true, id); werr == nil {
				_ = writeStreamError(conn, condition(err), errorText(err))
			}
			return 0, nil, nil, err
		}
		h, err := readHeader(r)
		if err != nil {
			if errors.Is(err, ErrRefused) {
				return 0, nil, nil, err
			}
			return refuse(err)
		}
		if h.HasTo && !h.To.Bare().Equal(cfg.local) {
			return refuse(streamErr(ErrWrongPeer, stream.HostUnknown, "stream addressed to %s, this is %s", h.To, cfg.local))
		}
		peer, err := cfg.authorize(ctx, h)
		if err != nil {
			return refuse(err)
		}
		if err := writeHeader(conn, cfg.local, peer, h.v1(), id); err != nil {
			return 0, nil, nil, fmt.Errorf("linklocal: writing stream header: %w", err)
		}
		if h.v1() {
			if err := writeFeatures(conn, cfg.info); err != nil {
				return 0, nil, nil, fmt.Errorf("linklocal: writing stream features: %w", err)
			}
		}
		setInfo(in, out, cfg.local, peer, h.ID, id)
		if cfg.peer != nil {
			*cfg.peer = peer
		}
		return xmpp.Ready, nil, nil, nil
	}
}

// dialConfig is what the initiating side of a stream needs.
type dialConfig struct {
	local jid.JID
	// expect is the name of the peer dialled; zero when only its address is
	// known (then the name is learned from its header).
	expect jid.JID
	// peer receives the peer's name, info the disco#info of its stream
	// features (nil without).
	peer *jid.JID
	info **xmppclient.Info
}

// dialNegotiator is the initiating side of XEP-0174 §4: send our header,
// read the peer's, check that it is who we dialled, read its stream
// features when both sides speak XMPP 1.0.
func dialNegotiator(cfg dialConfig) xmpp.Negotiator {
	return func(ctx context.Context, in, out *stream.Info, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		conn := s.Conn()
		r := s.TokenReader()
		defer r.Close()
		if err := writeHeader(conn, cfg.local, cfg.expect, true, ""); err != nil {
			return 0, nil, nil, fmt.Errorf("linklocal: writing stream header: %w", err)
		}
		h, err := readHeader(r)
		if err != nil {
			return 0, nil, nil, err
		}
		peer := cfg.expect
		switch {
		case h.HasFrom && !cfg.expect.Equal(jid.JID{}) && !h.From.Bare().Equal(cfg.expect):
			return 0, nil, nil, fmt.Errorf("%w: dialled %s, answered by %s", ErrWrongPeer, cfg.expect, h.From)
		case h.HasFrom:
			p, err := ParseName(h.From.String())
			if err != nil {
				return 0, nil, nil, fmt.Errorf("%w: answered as %q: %w", ErrWrongPeer, h.From, err)
			}
			peer = p
		case cfg.expect.Equal(jid.JID{}):
			return 0, nil, nil, fmt.Errorf("%w: the peer's stream header has no 'from'", ErrWrongPeer)
		}
		if peer.Equal(cfg.local) {
			return 0, nil, nil, fmt.Errorf("%w: the peer answered with this node's own name %s", ErrWrongPeer, peer)
		}
		if h.HasTo && !h.To.Bare().Equal(cfg.local) {
			return 0, nil, nil, fmt.Errorf("%w: %s addressed its stream to %s, this is %s", ErrWrongPeer, peer, h.To, cfg.local)
		}
		if h.v1() {
			f, err := readFeatures(r)
			if err != nil {
				return 0, nil, nil, err
			}
			if f.StartTLS != nil && f.StartTLS.Required != nil {
				return 0, nil, nil, fmt.Errorf("%w: %s", ErrTLSRequired, peer)
			}
			if f.Disco != nil && cfg.info != nil {
				i := f.Disco.info()
				*cfg.info = &i
			}
		}
		setInfo(in, out, cfg.local, peer, h.ID, "")
		if cfg.peer != nil {
			*cfg.peer = peer
		}
		return xmpp.Ready, nil, nil, nil
	}
}

// errorText is the text of a stream error sent for err: its message
// without the package prefix.
func errorText(err error) string {
	return clip(strings.TrimPrefix(err.Error(), "linklocal: "))
}

// clip shortens peer-controlled text for logs and errors.
func clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// randomID returns a random stream id.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errNotXML is returned by a limitConn whose peer's first byte (after
// white space) is not '<': text that encoding/xml would buffer forever,
// waiting for markup.
var errNotXML = errors.New("the peer's first bytes are not XML")

// limitConn guards a connection until its stream is open (lift): reads
// fail once more than max bytes were read, bounding what a peer can make
// this side buffer, and fail at once when the first byte that is not white
// space is not '<'. The negotiating goroutine is its only reader until
// lift.
type limitConn struct {
	net.Conn
	left    int64
	started bool // a byte other than white space was seen
	lifted  bool
}

func newLimitConn(c net.Conn, max int) *limitConn {
	return &limitConn{Conn: c, left: int64(max)}
}

func (c *limitConn) lift() { c.lifted = true }

func (c *limitConn) Read(p []byte) (int, error) {
	if c.lifted {
		return c.Conn.Read(p)
	}
	if c.left <= 0 {
		return 0, ErrHeaderTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	if !c.started {
		for _, b := range p[:n] {
			if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
				continue
			}
			if b != '<' {
				return 0, errNotXML
			}
			c.started = true
			break
		}
	}
	return n, err
}

// bound makes the I/O of c fail once ctx ends (a sticky deadline in the
// past) and by ctx's deadline. It replaces mellium's own handling of the
// negotiation context, which sets the deadline back to zero right after
// setting it to the past and so may not interrupt a blocked read. stop
// reports false if ctx ended first.
func bound(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
}
