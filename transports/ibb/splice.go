package ibb

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strconv"
	"sync"
)

// Payloads takes the base64 text of IBB <data/> elements out of an XMPP
// stream before its XML decoder sees it, and hands it to the Method's
// handlers; with WriteFilter, it also keeps the text of the <data/> the
// Method sends out of the stream's XML encoder. encoding/xml reads
// character data one byte at a time through several calls per byte,
// which made about half of an IBB receiver's CPU at 65535-byte blocks;
// Filter finds the end of the text with bytes.IndexByte, decodes it in
// the same pass that checks it, and the decoder only sees a short
// reference.
//
// Use one Payloads per XMPP stream: wrap the stream's reader, once it is
// secured by TLS, with Filter (xmppclient.Config.ReadFilter), and set
// Method.Payloads. Only the text of a <data/> in the IBB namespace, with
// the namespace declared on the element as servers send it, made only of
// base64 characters and white space and followed by the end tag, is
// taken out; anything else (entities, CDATA, comments, child elements)
// reaches the decoder untouched, and the handlers read it as before. A
// reference names a random key of this Payloads, so that a peer cannot
// forge one.
type Payloads struct {
	prefix string    // "#ibb-KEY-": references are prefix + number
	out    *outgoing // the sending side: see WriteFilter

	mu      sync.Mutex
	next    uint64
	pending map[uint64]payload
}

// payload is the text of a <data/> taken out of the stream: decoded when
// it was unbroken base64, as it came otherwise (white space), for the
// handler's decoder.
type payload struct {
	b       []byte
	decoded bool
}

// maxPending bounds the payloads taken out and not yet claimed: the
// decoder reads ahead by a few KiB only, so more means handlers that do
// not claim theirs (a Method without Payloads, an unknown bytestream).
const maxPending = 64

// maxSplice is the longest text taken out: the payload limit of the
// largest block size. Longer text goes through the decoder, and the
// handler refuses it as too big.
var maxSplice = payloadLimit(65535)

// NewPayloads returns an empty Payloads with a random key.
func NewPayloads() *Payloads {
	key := make([]byte, 16)
	_, _ = rand.Read(key) // never fails: Go crashes the program if the system RNG does
	return &Payloads{prefix: "#ibb-" + hex.EncodeToString(key) + "-", out: newOutgoing(), pending: map[uint64]payload{}}
}

// put stores a payload and returns its reference.
func (p *Payloads) put(b payload) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.next
	p.next++
	p.pending[id] = b
	if len(p.pending) > maxPending {
		for k := range p.pending {
			if k+maxPending <= id {
				delete(p.pending, k)
			}
		}
	}
	return strconv.AppendUint(append([]byte(nil), p.prefix...), id, 10)
}

// take returns the payload that text refers to, if it is a reference of
// p, and forgets it and every older one (stanzas are handled in stream
// order, so an older one was never claimed).
func (p *Payloads) take(text []byte) (payload, bool) {
	if p == nil || !bytes.HasPrefix(text, []byte(p.prefix)) {
		return payload{}, false
	}
	id, err := strconv.ParseUint(string(bytes.TrimSpace(text[len(p.prefix):])), 10, 64)
	if err != nil {
		return payload{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.pending[id]
	for k := range p.pending {
		if k <= id {
			delete(p.pending, k)
		}
	}
	return b, ok
}

// Filter returns a reader of r's bytes in which the text of IBB <data/>
// elements is replaced by references to p.
func (p *Payloads) Filter(r io.Reader) io.Reader {
	return &spliceReader{r: r, p: p, in: make([]byte, 32<<10)}
}

// States of spliceReader.
const (
	stText      = iota // character data
	stTag              // inside a tag, after '<'
	stSkip             // inside a comment, CDATA section or processing instruction, until term
	stPayload          // the text of an IBB <data/>
	stPayloadLT        // the text of an IBB <data/>, then '<'
)

// base64Text marks the bytes a spliced payload may contain.
var base64Text = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n") {
		t[c] = true
	}
	return t
}()

// maxTag bounds a start tag examined for splicing; longer ones pass.
const maxTag = 4096

// spliceReader is the reader of Payloads.Filter: a small XML scanner that
// recognizes tags, comments, CDATA sections and processing instructions,
// enough to find <data/> start tags and their text.
type spliceReader struct {
	r   io.Reader
	p   *Payloads
	err error // of r, reported once out is drained

	in        []byte
	inPos     int
	inEnd     int
	out       []byte // ready for Read
	outBuf    []byte
	state     int
	tag       []byte // the tag being read, from '<'
	quote     byte   // in stTag: the quote of the attribute value being read, or 0
	term      string // in stSkip: what ends the construct
	termMatch int    // bytes of term matched so far
	payload   []byte // in stPayload
}

func (s *spliceReader) Read(b []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.inPos == s.inEnd {
			n, err := s.r.Read(s.in)
			s.inPos, s.inEnd = 0, n
			if err != nil {
				s.err = err
			}
		}
		s.outBuf = s.outBuf[:0]
		s.scan()
		if s.err != nil && s.inPos == s.inEnd {
			s.flush() // the stream ended: whatever was held back is text
		}
		s.out = s.outBuf
	}
	n := copy(b, s.out)
	s.out = s.out[n:]
	return n, nil
}

// flush emits what is held back as it came.
func (s *spliceReader) flush() {
	s.outBuf = append(s.outBuf, s.tag...)
	s.outBuf = append(s.outBuf, s.payload...)
	s.tag, s.payload = s.tag[:0], s.payload[:0]
	s.state = stText
}

// scan processes the buffered input into outBuf. It stops after a
// reference, so that the decoder's read-ahead holds few of them.
func (s *spliceReader) scan() {
	for s.inPos < s.inEnd {
		in := s.in[s.inPos:s.inEnd]
		switch s.state {
		case stText:
			i := bytes.IndexByte(in, '<')
			if i < 0 {
				s.outBuf = append(s.outBuf, in...)
				s.inPos = s.inEnd
				continue
			}
			s.outBuf = append(s.outBuf, in[:i]...)
			s.tag = append(s.tag[:0], '<')
			s.quote = 0
			s.state = stTag
			s.inPos += i + 1
		case stTag:
			s.inPos += s.scanTag(in)
		case stSkip:
			s.inPos += s.scanSkip(in)
		case stPayload:
			n, spliced := s.scanPayload(in)
			s.inPos += n
			if spliced {
				return
			}
		case stPayloadLT:
			if s.endPayload(in[0] == '/') {
				return
			}
		}
	}
}

// scanTag reads tag bytes from in and returns how many it used.
func (s *spliceReader) scanTag(in []byte) int {
	for i, c := range in {
		s.tag = append(s.tag, c)
		switch {
		case len(s.tag) == 2 && c == '?':
			s.skip("?>")
			return i + 1
		case len(s.tag) == 4 && string(s.tag) == "<!--":
			s.skip("-->")
			return i + 1
		case len(s.tag) == 9 && string(s.tag) == "<![CDATA[":
			s.skip("]]>")
			return i + 1
		case s.quote != 0:
			if c == s.quote {
				s.quote = 0
			}
		case c == '\'' || c == '"':
			s.quote = c
		case c == '>':
			s.outBuf = append(s.outBuf, s.tag...)
			s.state = stText
			if isIBBDataStart(s.tag) {
				s.state = stPayload
				s.payload = s.payload[:0]
			}
			s.tag = s.tag[:0]
			return i + 1
		}
		if len(s.tag) > maxTag {
			s.flush() // too long to be a <data/> start tag of ours: pass it
			s.state = stText
			return i + 1
		}
	}
	return len(in)
}

// skip passes the tag read so far and everything up to term.
func (s *spliceReader) skip(term string) {
	s.outBuf = append(s.outBuf, s.tag...)
	s.tag = s.tag[:0]
	s.state, s.term, s.termMatch = stSkip, term, 0
}

// scanSkip passes bytes up to and including term.
func (s *spliceReader) scanSkip(in []byte) int {
	for i, c := range in {
		switch {
		case c == s.term[s.termMatch]:
			s.termMatch++
		case c == s.term[0]:
			s.termMatch = 1
		default:
			s.termMatch = 0
		}
		if s.termMatch == len(s.term) {
			s.outBuf = append(s.outBuf, in[:i+1]...)
			s.state = stText
			return i + 1
		}
	}
	s.outBuf = append(s.outBuf, in...)
	return len(in)
}

// scanPayload collects the text of an IBB <data/> up to the next '<'.
// There, if an end tag follows, the text is replaced by a reference;
// anything else (CDATA, a comment, a child element) passes it as is.
func (s *spliceReader) scanPayload(in []byte) (used int, spliced bool) {
	i := bytes.IndexByte(in, '<')
	if i < 0 {
		i = len(in)
	}
	if len(s.payload)+i > maxSplice {
		s.payload = append(s.payload, in[:i]...)
		s.flush() // too long for a block: the handler refuses it
		return i, false
	}
	if i == len(in) {
		s.payload = append(s.payload, in...)
		return len(in), false
	}
	s.payload = append(s.payload, in[:i+1]...) // with the '<'
	if i+1 == len(in) {
		s.state = stPayloadLT // the next byte tells
		return i + 1, false
	}
	return i + 1, s.endPayload(in[i+1] == '/')
}

// endPayload ends the text of a <data/>, held in payload with the '<'
// after it: endTag says whether that '<' starts an end tag. The text is
// replaced by a reference if it is base64, passed as is otherwise; the
// '<' goes on as the start of a tag.
func (s *spliceReader) endPayload(endTag bool) (spliced bool) {
	text := s.payload[:len(s.payload)-1]
	var ref []byte
	if endTag && len(text) > 0 {
		ref = s.splice(text)
	}
	if ref != nil {
		s.outBuf = append(s.outBuf, ref...)
	} else {
		s.outBuf = append(s.outBuf, text...)
	}
	s.payload = s.payload[:0]
	s.tag = append(s.tag[:0], '<')
	s.quote = 0
	s.state = stTag
	return ref != nil
}

// splice stores text with p and returns its reference, or nil when the
// text is not base64 and white space only (entities, say), which the XML
// decoder must see. Unbroken base64 is decoded here: the standard decoder
// checks every byte in the same pass, and the text buffer is reused.
func (s *spliceReader) splice(text []byte) []byte {
	dec := make([]byte, b64.DecodedLen(len(text)))
	if n, err := b64.Decode(dec, text); err == nil {
		return s.p.put(payload{b: dec[:n], decoded: true})
	}
	for _, c := range text {
		if !base64Text[c] {
			return nil
		}
	}
	return s.p.put(payload{b: bytes.Clone(text)})
}

// isIBBDataStart reports whether tag is the start tag of a <data/> that
// declares the IBB namespace itself and has content.
func isIBBDataStart(tag []byte) bool {
	if len(tag) < 7 || !bytes.HasPrefix(tag, []byte("<data")) || bytes.HasSuffix(tag, []byte("/>")) {
		return false
	}
	switch tag[5] {
	case ' ', '\t', '\r', '\n':
	default:
		return false
	}
	return bytes.Contains(tag, []byte(` xmlns='`+NS+`'`)) || bytes.Contains(tag, []byte(` xmlns="`+NS+`"`))
}
