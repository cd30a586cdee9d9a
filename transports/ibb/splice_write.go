package ibb

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"io"
	"sync"
)

// The sending side of Payloads. encoding/xml escapes character data rune
// by rune (encoding/xml.escapeText): about 40 % of an IBB sender's CPU at
// 65535-byte blocks, for base64 that never needs escaping. With
// Payloads.WriteFilter on the stream's writer, a <data/> carries a short
// reference through the XML encoder instead of its text, and the filter
// puts the text back in place of the reference on its way to the
// connection.

// outgoing is the sending state of a Payloads.
type outgoing struct {
	prefix []byte // "#ibb-KEY-": a key of its own, never sent

	mu      sync.Mutex
	filters int    // writers made by WriteFilter
	next    uint64 // the number of the next reference
	pending map[uint64][]byte
}

// outRefLen is the length of an outgoing reference: the prefix ("#ibb-",
// 32 hex digits, "-") and 16 hex digits of its number. '#' and '-' are
// not base64: a reference that reached a peer would be refused as bad
// base64, never taken for data.
const outRefLen = 5 + 32 + 1 + 16

func newOutgoing() *outgoing {
	key := make([]byte, 16)
	_, _ = rand.Read(key) // never fails: Go crashes the program if the system RNG does
	return &outgoing{prefix: []byte("#ibb-" + hex.EncodeToString(key) + "-"), pending: map[uint64][]byte{}}
}

// outText is one <data/> text on its way out.
type outText struct {
	o  *outgoing // nil: text is the base64 itself
	id uint64
	// text is what the <data/> carries through the XML encoder: the
	// base64 text, or a reference to it.
	text []byte
}

// send returns how to send the base64 text enc in a <data/>: as a
// reference when WriteFilter wraps the stream's writer, as itself
// otherwise (and for a nil p). enc must not change until done.
func (p *Payloads) send(enc []byte) outText {
	if p == nil {
		return outText{text: enc}
	}
	o := p.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.filters == 0 {
		return outText{text: enc}
	}
	id := o.next
	o.next++
	o.pending[id] = enc
	var num [8]byte
	binary.BigEndian.PutUint64(num[:], id)
	ref := make([]byte, len(o.prefix), outRefLen)
	copy(ref, o.prefix)
	ref = hex.AppendEncode(ref, num[:])
	return outText{o: o, id: id, text: ref}
}

// done forgets the text once the stanza that carried it has been written
// or will never be, and reports whether a write filter put the text in
// place of the reference (always true without a reference). A stanza
// written without the text — the filter is on another stream — carried
// the reference itself, which the peer refuses.
func (t outText) done() bool {
	if t.o == nil {
		return true
	}
	t.o.mu.Lock()
	defer t.o.mu.Unlock()
	_, left := t.o.pending[t.id]
	delete(t.o.pending, t.id)
	return !left
}

// claim returns the text that ref refers to and forgets it.
func (o *outgoing) claim(ref []byte) ([]byte, bool) {
	num := make([]byte, 8)
	if _, err := hex.Decode(num, ref[len(o.prefix):]); err != nil {
		return nil, false
	}
	id := binary.BigEndian.Uint64(num)
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.pending[id]
	delete(o.pending, id)
	return b, ok
}

// WriteFilter returns a writer to w that replaces the references carried
// by this Payloads' outgoing <data/> elements with their base64 text.
// Wrap the stream's writer with it (xmppclient.Config.WriteFilter), as
// Filter wraps its reader. Once a WriteFilter exists, the Method's
// <data/> elements carry references: it must be on the stream the Method
// sends on (one Payloads per stream), or the data cannot be sent — the
// Method then breaks the bytestream, and a peer that got a reference
// refuses it as bad base64.
//
// Every other byte passes as it comes, in the same order. A write that
// ends with what may be the start of a reference keeps up to outRefLen
// bytes back until the next write; the XML encoder always ends its
// output of a stanza or tag with '>', so nothing is kept back once a
// stanza has been written.
func (p *Payloads) WriteFilter(w io.Writer) io.Writer {
	p.out.mu.Lock()
	p.out.filters++
	p.out.mu.Unlock()
	return &spliceWriter{w: w, o: p.out}
}

// spliceWriter is the writer of Payloads.WriteFilter.
type spliceWriter struct {
	w io.Writer
	o *outgoing

	mu   sync.Mutex
	held []byte // the end of the last write: maybe the start of a reference
	buf  []byte // the bytes of one write, references replaced
}

func (s *spliceWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := b
	if len(s.held) > 0 {
		data = append(s.held, b...)
		s.held = nil
	}
	out, spliced := s.buf[:0], false
	for from := 0; ; {
		i := bytes.Index(data[from:], s.o.prefix)
		if i < 0 {
			break
		}
		i += from
		end := min(len(data), i+outRefLen)
		if !isHex(data[i+len(s.o.prefix) : end]) {
			from = i + 1 // not a reference
			continue
		}
		out = append(out, data[:i]...)
		spliced = true
		if end < i+outRefLen {
			// The start of a reference: keep it for the next write.
			s.held = append([]byte(nil), data[i:]...)
			data, from = nil, 0
			break
		}
		ref := data[i:end]
		if text, ok := s.o.claim(ref); ok {
			out = append(out, text...)
		} else {
			out = append(out, ref...)
		}
		data, from = data[end:], 0
	}
	if k := partialPrefix(data, s.o.prefix); k > 0 {
		s.held = append(s.held, data[len(data)-k:]...)
		data = data[:len(data)-k]
		spliced = true
	}
	if !spliced {
		// Nothing to replace or keep back: b as it came.
		if _, err := s.w.Write(data); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	out = append(out, data...)
	if len(out) > 0 {
		if _, err := s.w.Write(out); err != nil {
			return 0, err
		}
	}
	// Keep the buffer for the next stanza unless it grew past a block's
	// text: a stream sends one stanza at a time.
	if cap(out) <= 2*maxSplice {
		s.buf = out[:0]
	}
	return len(b), nil
}

// isHex reports whether b is made of lowercase hex digits, as the
// numbers of references are.
func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// partialPrefix returns the length of the longest end of b that is a
// proper beginning of prefix: what may continue into a reference in the
// next write. prefix has its only '#' first, so only the last '#' of b
// can start one.
func partialPrefix(b, prefix []byte) int {
	tail := b[len(b)-min(len(b), len(prefix)-1):]
	i := bytes.LastIndexByte(tail, prefix[0])
	if i < 0 || !bytes.HasPrefix(prefix, tail[i:]) {
		return 0
	}
	return len(tail) - i
}
