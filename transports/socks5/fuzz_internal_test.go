package socks5

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// fuzzHash is the DST.ADDR the fuzzed streamhost expects.
const fuzzHash = "0123456789abcdef0123456789abcdef01234567"

// socksRequest is what a well-behaved client sends for dst: the greeting
// with the no-authentication method, then CONNECT to dst, port 0.
func socksRequest(dst string) []byte {
	b := []byte{socksVersion, 1, methodNoAuth, socksVersion, cmdConnect, 0, atypDomain, byte(len(dst))}
	return append(append(b, dst...), 0, 0)
}

// parseRequest is a reference reader of what a client may send a
// streamhost: a greeting offering the no-authentication method, then a
// CONNECT with a domain-name DST.ADDR. It returns the DST.ADDR, the bytes
// after the request, and whether the request is well-formed.
func parseRequest(b []byte) (dst string, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != socksVersion || len(b) < 2+int(b[1]) || !bytes.Contains(b[2:2+int(b[1])], []byte{methodNoAuth}) {
		return "", nil, false
	}
	b = b[2+int(b[1]):]
	if len(b) < 5 || b[0] != socksVersion || b[1] != cmdConnect || b[3] != atypDomain || len(b) < 5+int(b[4])+2 {
		return "", nil, false
	}
	n := int(b[4])
	return string(b[5 : 5+n]), b[5+n+2:], true
}

// FuzzStreamhost sends what a hostile client may send to our SOCKS5
// streamhost (the server side, go-socks5 behind our rules): no panic, no
// hang, and a bytestream is handed over only after a well-formed CONNECT
// to the expected DST.ADDR, carrying exactly the bytes that followed it.
func FuzzStreamhost(f *testing.F) {
	f.Add(append(socksRequest(fuzzHash), "payload"...))
	f.Add(socksRequest(fuzzHash))
	f.Add(socksRequest("0000000000000000000000000000000000000000"))
	f.Add([]byte{5, 2, 2, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})                        // IPv4 CONNECT
	f.Add(append([]byte{5, 1, 0, 5, 3, 0, 3, 40}, append([]byte(fuzzHash), 0, 0)...)) // UDP ASSOCIATE
	f.Add([]byte{4, 1, 0, 80, 127, 0, 0, 1, 0})                                       // SOCKS4
	f.Add([]byte{5, 0})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	delivered := make(chan *acceptedConn, maxAccepted)
	sh := newStreamhost(ln, []string{fuzzHash}, 3*time.Second, slog.New(slog.DiscardHandler), func(ac *acceptedConn) { delivered <- ac })
	f.Cleanup(func() { sh.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			t.Skip(err) // out of ports or descriptors: not the input's fault
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		readDone := make(chan []byte, 1)
		go func() {
			reply, _ := io.ReadAll(c)
			readDone <- reply
		}()
		if _, err := c.Write(data); err == nil {
			_ = c.CloseWrite()
		}
		select {
		case ac := <-delivered:
			_ = ac.conn.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(ac.conn)
			ac.conn.Close()
			<-readDone
			dst, rest, ok := parseRequest(data)
			switch {
			case !ok || dst != fuzzHash || ac.hash != fuzzHash:
				t.Fatalf("handed over a bytestream (hash %q) after %q", ac.hash, data)
			case err != nil || !bytes.Equal(got, rest):
				t.Fatalf("after %q the bytestream carried %q (%v), want %q", data, got, err, rest)
			}
		case reply := <-readDone:
			if len(reply) > 0 && reply[0] != socksVersion {
				t.Fatalf("reply %q of another version", reply)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no hand-over and no end of the connection after %q", data)
		}
	})
}

// parseReply is a reference reader of a streamhost's answer: method
// selection of no-authentication, then a CONNECT reply "succeeded" with a
// well-formed bound address.
func parseReply(b []byte) bool {
	if len(b) < 6 || b[0] != socksVersion || b[1] != methodNoAuth || b[2] != socksVersion || b[3] != replySucceed {
		return false
	}
	switch b = b[5:]; b[0] {
	case atypIPv4:
		return len(b) >= 1+4+2
	case atypIPv6:
		return len(b) >= 1+16+2
	case atypDomain:
		return len(b) >= 2 && len(b) >= 2+int(b[1])+2
	}
	return false
}

// FuzzClientHandshake answers our SOCKS5 client (handshake, the side that
// connects to a peer's or a proxy's streamhost) with what a hostile
// streamhost may send: no panic, no hang, and success only on a
// well-formed method selection and "succeeded" reply.
func FuzzClientHandshake(f *testing.F) {
	f.Add([]byte{5, 0, 5, 0, 0, 3, 40})
	f.Add(append([]byte{5, 0, 5, 0, 0, 3, 40}, append([]byte(fuzzHash), 0, 0)...))
	f.Add([]byte{5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	f.Add([]byte{5, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{5, 0xff})
	f.Add([]byte{5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		srvDone := make(chan struct{})
		go func() {
			defer close(srvDone)
			s, err := ln.Accept()
			if err != nil {
				return
			}
			defer s.Close()
			_ = s.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := s.Write(data); err == nil {
				_ = s.(*net.TCPConn).CloseWrite()
			}
			// Until the client is done: closing with its request unread
			// would reset the connection before it reads the answer.
			_, _ = io.Copy(io.Discard, s)
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Skip(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err = handshake(c, fuzzHash)
		if err == nil && !parseReply(data) {
			t.Fatalf("handshake accepted %q", data)
		}
		if err != nil && parseReply(data) {
			t.Fatalf("handshake refused the well-formed %q: %v", data, err)
		}
		c.Close()
		<-srvDone
	})
}
