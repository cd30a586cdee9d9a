package jet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
)

// pipeThrough seals msg on one end of a TCP loopback connection and opens
// it on the other, with flip applied to the wire bytes.
func pipeThrough(t *testing.T, msg []byte, sizeKnown bool, flip int) ([]byte, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	key, iv := make([]byte, KeySize), make([]byte, IVSize)
	rand.Read(key)
	rand.Read(iv)
	size := int64(-1)
	if sizeKnown {
		size = int64(len(msg))
	}
	errc := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		var w net.Conn = c
		if flip >= 0 {
			w = &flipConn{Conn: c, at: int64(flip)}
		}
		sc, err := SealConn(w, key, iv, size)
		if err != nil {
			errc <- err
			return
		}
		for off := 0; off < len(msg); off += 1000 {
			if _, err := sc.Write(msg[off:min(off+1000, len(msg))]); err != nil {
				errc <- err
				return
			}
		}
		errc <- sc.(interface{ CloseWrite() error }).CloseWrite()
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	oc, err := OpenConn(c, key, iv, size)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 777)
	for sizeKnown && len(got) < len(msg) || !sizeKnown {
		n, err := oc.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF && !sizeKnown {
			break
		}
		if err != nil {
			return got, err
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("sender: %v", err)
	}
	return got, nil
}

type flipConn struct {
	net.Conn
	at, n int64
}

func (c *flipConn) Write(p []byte) (int, error) {
	q := bytes.Clone(p)
	if c.at >= c.n && c.at < c.n+int64(len(q)) {
		q[c.at-c.n] ^= 1
	}
	c.n += int64(len(q))
	return c.Conn.Write(q)
}

// watchedConn only watches the stream it wraps, as the Observer's wrapper
// of jingle's streams does (Unwrap); halfConn records its half-close.
type (
	watchedConn struct{ net.Conn }
	halfConn    struct {
		net.Conn
		closedWrite bool
	}
)

func (c watchedConn) Unwrap() net.Conn          { return c.Conn }
func (c *halfConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *halfConn) CloseWrite() error           { c.closedWrite = true; return nil }

// TestSealCloseWriteUnwraps: CloseWrite half-closes the stream also under
// a wrapper that only watches it (jinglectl's agent has an Observer), so
// that a peer that waits for the end of the stream (Libervia) gets it.
func TestSealCloseWriteUnwraps(t *testing.T) {
	for _, size := range []int64{3, -1} {
		hc := &halfConn{}
		sc, err := SealConn(watchedConn{hc}, make([]byte, KeySize), make([]byte, IVSize), size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		if err := sc.(interface{ CloseWrite() error }).CloseWrite(); err != nil || !hc.closedWrite {
			t.Errorf("size %d: CloseWrite: %v; the stream half-closed: %v", size, err, hc.closedWrite)
		}
	}
}

func TestConnRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 16, 5000, 100003} {
		msg := make([]byte, n)
		rand.Read(msg)
		for _, sized := range []bool{true, false} {
			got, err := pipeThrough(t, msg, sized, -1)
			if err != nil {
				t.Fatalf("%d bytes, sized %v: %v", n, sized, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("%d bytes, sized %v: got %d different bytes", n, sized, len(got))
			}
		}
	}
}

// TestConnFlippedByte: one flipped bit anywhere on the wire (data or tag)
// fails with ErrAuthentication; when the size is known, the reader never
// gets all the bytes.
func TestConnFlippedByte(t *testing.T) {
	msg := make([]byte, 50000)
	rand.Read(msg)
	for _, at := range []int{0, 25000, 49999, 50000, 50015} {
		for _, sized := range []bool{true, false} {
			got, err := pipeThrough(t, msg, sized, at)
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("flip at %d, sized %v: err = %v, want ErrAuthentication", at, sized, err)
			}
			if sized && len(got) >= len(msg) {
				t.Fatalf("flip at %d, sized %v: the reader got all %d bytes before the tag failed", at, sized, len(got))
			}
		}
	}
}

// TestConnTruncated: a stream cut before its tag is an error, never a
// clean end.
func TestConnTruncated(t *testing.T) {
	key, iv := make([]byte, KeySize), make([]byte, IVSize)
	a, b := net.Pipe()
	go func() {
		sc, _ := SealConn(a, key, iv, -1)
		sc.Write(make([]byte, 100))
		a.Close() // no CloseWrite: no tag
	}()
	oc, _ := OpenConn(b, key, iv, 100)
	_, err := io.ReadAll(oc)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want ErrTruncated", err)
	}
}
