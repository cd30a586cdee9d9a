package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jet"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// captureMethod wraps a transport method and records every byte written
// on its streams (what IBB, SOCKS5 or the data channel carry), and may
// flip one of them.
type captureMethod struct {
	jingle.TransportMethod
	mu   sync.Mutex
	buf  bytes.Buffer
	flip int64 // offset of the byte to flip on the wire; -1 none
}

func (m *captureMethod) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t, err := m.TransportMethod.NewTransport(ctx, p)
	if err != nil {
		return nil, err
	}
	return &captureTransport{StreamTransport: t.(jingle.StreamTransport), m: m}, nil
}

func (m *captureMethod) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.buf.Bytes())
}

type captureTransport struct {
	jingle.StreamTransport
	m *captureMethod
}

func (t *captureTransport) Dial(ctx context.Context) (net.Conn, error) {
	c, err := t.StreamTransport.Dial(ctx)
	if err != nil {
		return c, err
	}
	return &captureConn{Conn: c, m: t.m}, nil
}

type captureConn struct {
	net.Conn
	m *captureMethod
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.m.mu.Lock()
	start := int64(c.m.buf.Len())
	c.m.buf.Write(b)
	if c.m.flip >= start && c.m.flip < start+int64(len(b)) {
		b = bytes.Clone(b)
		b[c.m.flip-start] ^= 0x01
	}
	c.m.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *captureConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// plaintextIn reports whether any 64-byte window of plain occurs in wire.
// Every 64-byte window holds a 32-byte block of plain aligned on 32, so it
// looks for those: a stricter test.
func plaintextIn(plain, wire []byte) bool {
	blocks := map[string]bool{}
	for i := 0; i+32 <= len(plain); i += 32 {
		blocks[string(plain[i:i+32])] = true
	}
	for i := 0; i+32 <= len(wire); i++ {
		if blocks[string(wire[i:i+32])] {
			return true
		}
	}
	return false
}

func secureWith(p *peer) func(ctx context.Context, peer jid.JID, content string) (jingle.Element, jingle.Security, error) {
	return func(ctx context.Context, to jid.JID, content string) (jingle.Element, jingle.Security, error) {
		el, layer, err := p.jet.Offer(ctx, to, content, "")
		return el, layer, err
	}
}

// TestEncryptedTransports sends a file encrypted (XEP-0391 JET, AES-128-GCM)
// over the transports of TestTransports (ICE in one dialect: the layer
// is above the data channel), and captures what the transport carried:
// the file arrives verified, and no 64-byte window of it is on the wire.
// The same capture of an unencrypted transfer finds the plaintext, so the
// capture does see the data.
func TestEncryptedTransports(t *testing.T) {
	srv := prosody.Get(t)
	for _, tc := range oneICEDialect(transportCases()) {
		t.Run(tc.name, func(t *testing.T) {
			capture := map[string]*captureMethod{}
			var mu sync.Mutex
			opts := tc.opts()
			opts.wrapAll = func(tm jingle.TransportMethod) jingle.TransportMethod {
				c := &captureMethod{TransportMethod: tm, flip: -1}
				mu.Lock()
				capture[tm.Namespace()] = c
				mu.Unlock()
				return c
			}
			alice := newPeer(t, srv, "alice", opts)
			bob := newPeer(t, srv, "bob", tc.opts())
			// The first file goes encrypted, the second in the clear.
			encrypted := func(i int) bool { return i == 0 }
			const size = 1 << 20
			sendTable(t, alice, bob, tc.transport, []int64{size, size}, sendHook{
				before: func(t *testing.T, i int, _ string, s *filetransfer.Sender) {
					capture[tc.transport].buf.Reset()
					if encrypted(i) {
						s.Secure = secureWith(alice)
					}
				},
				after: func(t *testing.T, i int, path string, sent, got filetransfer.Result) {
					encrypted := encrypted(i)
					if sent.Encrypted != encrypted || got.Encrypted != encrypted {
						t.Fatalf("results: sender's encrypted=%v, receiver's %v; want %v", sent.Encrypted, got.Encrypted, encrypted)
					}
					plain, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					wire := capture[tc.transport].bytes()
					if len(wire) < size {
						t.Fatalf("captured %d bytes, want at least %d", len(wire), size)
					}
					if encrypted && len(wire) != size+jet.TagSize {
						t.Fatalf("encrypted stream carried %d bytes, want %d (size + tag)", len(wire), size+jet.TagSize)
					}
					if found := plaintextIn(plain, wire); found == encrypted {
						t.Fatalf("encrypted=%v: plaintext found on the wire: %v", encrypted, found)
					}
				},
			})
		})
	}
}

// TestEncryptedFlippedByte flips one byte of the ciphertext on the wire:
// the receiver fails with a security error, leaves neither the file nor a
// .part, and the sender is told.
func TestEncryptedFlippedByte(t *testing.T) {
	srv := prosody.Get(t)
	var capture *captureMethod
	opts := peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}}
	opts.wrapAll = func(tm jingle.TransportMethod) jingle.TransportMethod {
		c := &captureMethod{TransportMethod: tm, flip: -1}
		if tm.Namespace() == socks5.NS {
			capture = c
			c.flip = 300000
		}
		return c
	}
	alice := newPeer(t, srv, "alice", opts)
	bob := newPeer(t, srv, "bob", peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}})
	path, _ := randomFile(t, "flip.bin", 1<<20, 7)
	src, _ := filetransfer.FileSource(path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := filetransfer.Sender{Transports: []string{socks5.NS}, Secure: secureWith(alice)}
	_, err := s.Send(ctx, alice.m, bob.jid, src)
	if !errors.Is(err, filetransfer.ErrSecurity) {
		t.Fatalf("send: %v, want ErrSecurity", err)
	}
	r := bob.result(t)
	if !errors.Is(r.Err, filetransfer.ErrSecurity) || !errors.Is(r.Err, jet.ErrAuthentication) {
		t.Fatalf("receiver's error = %v, want ErrSecurity and jet.ErrAuthentication", r.Err)
	}
	t.Logf("receiver: %v; sender: %v", r.Err, err)
	if len(capture.bytes()) == 0 {
		t.Fatal("nothing captured")
	}
	entries, _ := os.ReadDir(bob.dir)
	for _, e := range entries {
		t.Errorf("left in the receive directory: %s", filepath.Join(bob.dir, e.Name()))
	}
	if r.Path != "" {
		t.Errorf("result path %q, want none", r.Path)
	}
}

// TestEncryptedNoResume: an encrypted transfer cut half way leaves no
// .part (its bytes were never authenticated), and sending the file again
// starts over from 0 and verifies.
func TestEncryptedNoResume(t *testing.T) {
	const size = 8 << 20
	second, sent := cutAndResend(t, "noresume.bin", size, 43, [2]bool{true, true}, func(bob *peer, first filetransfer.Result) {
		if !first.Encrypted {
			t.Fatalf("bob's first result: err %v, encrypted %v", first.Err, first.Encrypted)
		}
		if first.Path != "" {
			t.Fatalf("an encrypted .part was kept: %s", first.Path)
		}
		if ents, _ := os.ReadDir(bob.dir); len(ents) != 0 {
			t.Fatalf("left in the receive directory after the cut: %v", ents)
		}
	})
	if second.Offset != 0 || sent.Offset != 0 || second.Bytes != size || !second.Encrypted {
		t.Fatalf("second transfer: offset %d (sender %d), %d bytes, encrypted %v; want all of it from 0, encrypted",
			second.Offset, sent.Offset, second.Bytes, second.Encrypted)
	}
}

// TestEncryptedOfferOverPlainPart: a plaintext transfer cut half way
// leaves a resumable NAME.part; the same file then sent encrypted is not
// resumed from it but restarts from the first byte into the same name,
// and the receiver's result says why (filetransfer.NoteEncryptedRestart).
// Nothing is left but the verified file.
func TestEncryptedOfferOverPlainPart(t *testing.T) {
	const size = 4 << 20
	var bob *peer
	second, sent := cutAndResend(t, "overpart.bin", size, 44, [2]bool{false, true}, func(p *peer, first filetransfer.Result) {
		bob = p
		if first.Encrypted || first.Path == "" {
			t.Fatalf("bob's first result: err %v, encrypted %v, path %q: want a kept plaintext .part", first.Err, first.Encrypted, first.Path)
		}
		if fi, err := os.Stat(first.Path); err != nil || fi.Size() == 0 {
			t.Fatalf("the plaintext .part: %v, %v", fi, err)
		}
	})
	if second.Offset != 0 || sent.Offset != 0 || second.Bytes != size || !second.Encrypted {
		t.Fatalf("encrypted transfer: offset %d (sender %d), %d bytes, encrypted %v; want all of it from 0, encrypted",
			second.Offset, sent.Offset, second.Bytes, second.Encrypted)
	}
	if second.Note != filetransfer.NoteEncryptedRestart {
		t.Errorf("receiver's note %q, want %q", second.Note, filetransfer.NoteEncryptedRestart)
	}
	if filepath.Base(second.Path) != "overpart.bin" {
		t.Errorf("received as %s, want overpart.bin (the .part's name, restarted)", second.Path)
	}
	ents, _ := os.ReadDir(bob.dir)
	if len(ents) != 1 || ents[0].Name() != "overpart.bin" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("receive directory holds %v, want only overpart.bin", names)
	}
}
