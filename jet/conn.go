package jet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/jinglekit/jinglekit/jingle"
)

// Direction says whether this side sends or receives over a secured stream.
type Direction int

// Directions.
const (
	Sending Direction = iota + 1
	Receiving
)

// ErrTruncated is returned when a sealed stream ends before its tag.
var ErrTruncated = errors.New("jet: the encrypted stream ended before its authentication tag")

// SealConn wraps conn so that what is written to it is encrypted with
// AES-128-GCM (key, iv), XEP-0396 style: ciphertext as it is written, and
// the 16-byte tag after the last byte — as soon as size bytes have been
// written when size >= 0, or on CloseWrite otherwise. Close without the
// tag having been sent does not send it, so a broken stream never looks
// complete. Reads are not supported.
func SealConn(conn net.Conn, key, iv []byte, size int64) (net.Conn, error) {
	st, err := newStream(key, iv)
	if err != nil {
		return nil, err
	}
	if size > MaxSize {
		return nil, ErrTooLarge
	}
	return &sealConn{Conn: conn, st: st, size: size, buf: make([]byte, 64<<10)}, nil
}

type sealConn struct {
	net.Conn
	mu      sync.Mutex
	st      *stream
	size    int64
	written int64
	buf     []byte
	tagSent bool
}

func (c *sealConn) Read([]byte) (int, error) {
	return 0, errors.New("jet: reading from the sending side of an encrypted stream")
}

// Write encrypts p and writes it.
func (c *sealConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tagSent {
		return 0, errors.New("jet: write after the end of the encrypted stream")
	}
	if c.size >= 0 && c.written+int64(len(p)) > c.size {
		return 0, fmt.Errorf("jet: writing past the announced %d bytes", c.size)
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), len(c.buf))
		if err := c.st.seal(c.buf[:k], p[:k]); err != nil {
			return n, err
		}
		w, err := c.Conn.Write(c.buf[:k])
		n += w
		c.written += int64(w)
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	if c.size >= 0 && c.written == c.size {
		return n, c.sendTag()
	}
	return n, nil
}

func (c *sealConn) sendTag() error {
	tag := c.st.gh.sum()
	c.tagSent = true
	if _, err := c.Conn.Write(tag[:]); err != nil {
		return fmt.Errorf("jet: sending the authentication tag: %w", err)
	}
	return nil
}

// CloseWrite ends the encrypted stream: it sends the tag if not sent yet
// (refusing when fewer bytes than announced were written), then half-closes
// the underlying connection when it can, also when that is a wrapper with
// Unwrap (jingle.StreamAs), such as an Observer's.
func (c *sealConn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tagSent {
		if c.size >= 0 && c.written != c.size {
			return fmt.Errorf("jet: closing after %d of %d bytes: %w", c.written, c.size, io.ErrShortWrite)
		}
		if err := c.sendTag(); err != nil {
			return err
		}
	}
	if cw, ok := jingle.StreamAs[interface{ CloseWrite() error }](c.Conn); ok {
		return cw.CloseWrite()
	}
	return nil
}

// OpenConn wraps conn so that what is read from it is decrypted with
// AES-128-GCM (key, iv) and authenticated. size is the plaintext size, or -1
// when unknown (the stream then ends at EOF, the last 16 bytes being the
// tag). When size is known, the last plaintext byte is returned only once
// the tag has been verified: a reader that got all the bytes it expected
// got authentic bytes; otherwise io.EOF is returned only once it has. A
// failed tag is ErrAuthentication. Writes are not supported.
func OpenConn(conn net.Conn, key, iv []byte, size int64) (net.Conn, error) {
	st, err := newStream(key, iv)
	if err != nil {
		return nil, err
	}
	if size > MaxSize {
		return nil, ErrTooLarge
	}
	return &openConn{Conn: conn, st: st, size: size}, nil
}

type openConn struct {
	net.Conn
	mu   sync.Mutex
	st   *stream
	size int64
	got  int64 // plaintext bytes returned
	// hold is the ciphertext not yet known not to be the tag (size
	// unknown), or the tag being read (size known).
	hold []byte
	err  error
	done bool
}

func (c *openConn) Write([]byte) (int, error) {
	return 0, errors.New("jet: writing to the receiving side of an encrypted stream")
}

// Read returns decrypted bytes.
func (c *openConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		// Past the tag: anything more is the peer's excess, passed up
		// raw for the application to notice.
		return c.Conn.Read(p)
	}
	if c.size >= 0 {
		return c.readSized(p)
	}
	return c.readUnsized(p)
}

func (c *openConn) fail(err error) (int, error) {
	c.err = err
	return 0, err
}

func (c *openConn) readSized(p []byte) (int, error) {
	left := c.size - c.got
	if int64(len(p)) > left {
		p = p[:left]
	}
	if len(p) == 0 {
		if err := c.readTag(); err != nil {
			return c.fail(err)
		}
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if oerr := c.st.open(p[:n], p[:n]); oerr != nil {
			return c.fail(oerr)
		}
		if c.got+int64(n) == c.size {
			// The last byte: not returned before the tag verifies.
			if terr := c.readTag(); terr != nil {
				return c.fail(terr)
			}
		}
		c.got += int64(n)
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		return c.fail(fmt.Errorf("after %d of %d bytes: %w", c.got, c.size, ErrTruncated))
	}
	return 0, err
}

func (c *openConn) readTag() error {
	tag := make([]byte, TagSize)
	if _, err := io.ReadFull(c.Conn, tag); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return fmt.Errorf("jet: reading the authentication tag: %w", err)
	}
	c.done = true
	return c.st.verify(tag)
}

func (c *openConn) readUnsized(p []byte) (int, error) {
	for {
		if len(c.hold) > TagSize {
			k := copy(p, c.hold[:len(c.hold)-TagSize])
			if err := c.st.open(p[:k], p[:k]); err != nil {
				return c.fail(err)
			}
			c.hold = c.hold[k:]
			c.got += int64(k)
			return k, nil
		}
		buf := make([]byte, max(len(p), 4096)+TagSize)
		n := copy(buf, c.hold)
		k, err := c.Conn.Read(buf[n:])
		c.hold = buf[:n+k]
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			return 0, err
		}
		if len(c.hold) < TagSize {
			return c.fail(ErrTruncated)
		}
		c.done = true
		if verr := c.st.verify(c.hold); verr != nil {
			return c.fail(verr)
		}
		return 0, io.EOF
	}
}
