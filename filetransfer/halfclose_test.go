package filetransfer_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestSenderHalfCloses: the sender ends its data with the stream's
// CloseWrite (Libervia waits for the end of the stream before it checks
// the file), also when the Manager has an Observer (jinglectl's agent has
// one), whose wrapper hides the method from a type assertion.
func TestSenderHalfCloses(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testSenderHalfCloses(t, false) })
	t.Run("observed", func(t *testing.T) { testSenderHalfCloses(t, true) })
}

func testSenderHalfCloses(t *testing.T, observed bool) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	hm := &halfCloseMethod{PipeMethod: &jingletest.PipeMethod{X: x}}
	alice := newParty(t, n, xmpptest.Alice, x, nil, hm)
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) { h.Policy = filetransfer.AcceptAll })
	var obs countingObserver
	if observed {
		alice.m.Observer = &obs
	}
	data := randomBytes(100<<10, 3)
	if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("f.bin", data)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if r := bob.result(t); r.Err != nil || !r.Verified {
		t.Fatalf("receive: %+v", r)
	}
	if got := hm.closedWrite.Load(); got != 1 {
		t.Fatalf("the sender's stream was half-closed %d times, want once", got)
	}
}

// halfCloseMethod is the pipe method whose streams count the calls of
// their CloseWrite, which does nothing else (a net.Pipe cannot
// half-close; the receiver stops at the offered size).
type halfCloseMethod struct {
	*jingletest.PipeMethod
	closedWrite atomic.Int32
}

func (m *halfCloseMethod) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t, err := m.PipeMethod.NewTransport(ctx, p)
	if err != nil {
		return nil, err
	}
	return halfCloseTransport{StreamTransport: t.(jingle.StreamTransport), m: m}, nil
}

type halfCloseTransport struct {
	jingle.StreamTransport
	m *halfCloseMethod
}

func (t halfCloseTransport) Dial(ctx context.Context) (net.Conn, error) {
	c, err := t.StreamTransport.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return halfCloseConn{Conn: c, m: t.m}, nil
}

type halfCloseConn struct {
	net.Conn
	m *halfCloseMethod
}

func (c halfCloseConn) CloseWrite() error {
	c.m.closedWrite.Add(1)
	return nil
}
