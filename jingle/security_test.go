package jingle_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/jinglekit/jinglekit/jingle"
)

// The security layer of these tests: XOR with a byte carried in the
// <security/> element. It stands for any layer; jingle knows none.
const xorNS = "urn:jinglekit:test:security:xor:0"

type xorSec struct {
	XMLName xml.Name `xml:"urn:jinglekit:test:security:xor:0 security"`
	Key     byte     `xml:"key,attr"`
}

type xorMethod struct{ opened int }

func (m *xorMethod) Namespace() string { return xorNS }

func (m *xorMethod) Open(_ context.Context, p jingle.SecurityParams) (jingle.Security, error) {
	m.opened++
	var s xorSec
	if err := p.Offer.Decode(&s); err != nil {
		return nil, err
	}
	return xorLayer{s.Key}, nil
}

type xorLayer struct{ k byte }

func (l xorLayer) WrapConn(_ context.Context, c net.Conn, _ jingle.StreamUse) (net.Conn, error) {
	return &xorConn{Conn: c, k: l.k}, nil
}

type xorConn struct {
	net.Conn
	k byte
}

func (c *xorConn) Write(p []byte) (int, error) {
	q := make([]byte, len(p))
	for i := range p {
		q[i] = p[i] ^ c.k
	}
	return c.Conn.Write(q)
}

func (c *xorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for i := range p[:n] {
		p[i] ^= c.k
	}
	return n, err
}

// TestSecurityLayer: a content with <security/> is opened by the method
// registered for its namespace (once), its stream is only available
// through SecureConn (Conn refuses it), and both sides' layers apply; a
// <security/> nobody registered is ErrUnsupportedSecurity.
func TestSecurityLayer(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	xm := &xorMethod{}
	if err := bob.m.RegisterSecurity(xm); err != nil {
		t.Fatal(err)
	}
	if err := bob.m.RegisterSecurity(&xorMethod{}); !errors.Is(err, jingle.ErrDuplicate) {
		t.Fatalf("second registration: %v, want ErrDuplicate", err)
	}
	ctx := tctx(t)
	sec := jingle.MustElement(xorSec{Key: 0x5a})
	o := offer("f")
	o.Security, o.Layer = &sec, xorLayer{0x5a}
	plain := offer("g")
	unknown := offer("u")
	other := jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:jinglekit:test:security:nobody:0 security"`
	}{})
	unknown.Security = &other
	as, err := alice.m.Initiate(ctx, bob.xs.LocalAddr(), o, plain, unknown)
	if err != nil {
		t.Fatal(err)
	}
	bs := incoming(t, bob)
	if _, err := bs.Security(ctx, "u"); !errors.Is(err, jingle.ErrUnsupportedSecurity) {
		t.Fatalf("unknown <security/>: %v, want ErrUnsupportedSecurity", err)
	}
	if l, err := bs.Security(ctx, "g"); l != nil || err != nil {
		t.Fatalf("content without security: %v, %v", l, err)
	}
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, as, jingle.ActionSessionAccept)
	for _, s := range []*jingle.Session{as, bs} {
		if _, err := s.Conn(ctx, "f"); !errors.Is(err, jingle.ErrSecured) {
			t.Fatalf("%s: Conn of a secured content: %v, want ErrSecured", s.Local(), err)
		}
	}
	done := make(chan error, 1)
	go func() {
		c, err := as.SecureConn(ctx, "f", jingle.StreamUse{Sending: true, Size: 5})
		if err != nil {
			done <- err
			return
		}
		_, err = c.Write([]byte("hello"))
		done <- err
	}()
	bc, err := bs.SecureConn(ctx, "f", jingle.StreamUse{Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(bc, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Fatalf("read %q through both layers, want hello", got)
	}
	if xm.opened != 1 {
		t.Fatalf("the method opened the <security/> %d times, want once", xm.opened)
	}
}
