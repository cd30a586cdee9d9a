package xmppclient

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync"
	"testing"
)

// countConn counts the writes that reach the network.
type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// TestBatchedTLSWrites: one write of the secured stream that makes
// several TLS records reaches the network as one write, and every byte
// arrives in order; writes outside a hold go out at once.
func TestBatchedTLSWrites(t *testing.T) {
	_, ca := newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	raw := &countConn{Conn: a}
	batch := &batchConn{Conn: raw}
	client := tls.Client(batch, &tls.Config{RootCAs: roots, ServerName: "example.net"})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "example.net")}})
	done := make(chan []byte)
	go func() {
		got, _ := io.ReadAll(server)
		done <- got
	}()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	fc := &filteredConn{Conn: client, r: client, w: client, batch: batch}
	msg := bytes.Repeat([]byte("<data>jinglekit</data>"), 4000) // 88 KB: six records
	before := raw.writes
	if n, err := fc.Write(msg); n != len(msg) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if w := raw.writes - before; w != 1 {
		t.Errorf("%d writes to the network for one write of %d bytes, want 1", w, len(msg))
	}
	if _, err := batch.Write([]byte{}); err != nil { // not held: straight through
		t.Fatal(err)
	}
	if _, err := fc.Write([]byte("</stream>")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if got := <-done; !bytes.Equal(got, append(msg, "</stream>"...)) {
		t.Errorf("the server read %d bytes, want %d in order", len(got), len(msg)+9)
	}
}
