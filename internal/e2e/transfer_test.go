package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// bigSize is the size of the largest file of TestTransports: 256 MiB when
// JINGLEKIT_BIG=1 (CI runs that without the race detector), else 32 MiB.
func bigSize() int64 {
	if os.Getenv("JINGLEKIT_BIG") == "1" {
		return 256 << 20
	}
	return 32 << 20
}

// transportCase is one row of the transfer tables: a transport, and the
// options of each peer (a fresh value per call) that make it go that way.
type transportCase struct {
	name      string
	transport string
	opts      func() peerOpts
}

// transportCases are the transports of TestTransports: IBB, S5B direct,
// S5B through Prosody's proxy65 and ICE in both data-channel dialects.
func transportCases() []transportCase {
	none := func() peerOpts { return peerOpts{} }
	return []transportCase{
		{"ibb", ibb.NSTransport, none},
		{"s5b-direct", socks5.NS, func() peerOpts { return peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}} }},
		{"s5b-proxy65", socks5.NS, func() peerOpts { return peerOpts{s5b: socks5.Settings{NoDirect: true}} }},
		{"ice-webrtc-datachannel", ice.NSWebRTCDataChannel, none},
		{"ice-udp-sctpmap", ice.NSICEUDP, none},
	}
}

// oneICEDialect is cs without its XEP-0343 (sctpmap) rows, for the tables
// that test what the dialects share: the signaling through the server,
// the security layer above the data channel.
func oneICEDialect(cs []transportCase) []transportCase {
	var out []transportCase
	for _, tc := range cs {
		if tc.transport != ice.NSICEUDP {
			out = append(out, tc)
		}
	}
	return out
}

// TestTransports sends files of 0 B, 1 B, 1 MiB and a big one from alice to
// bob over each of transportCases, and checks each arrives byte-identical
// and verified by the receiver.
func TestTransports(t *testing.T) {
	srv := prosody.Get(t)
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			alice := newPeer(t, srv, "alice", tc.opts())
			bob := newPeer(t, srv, "bob", tc.opts())
			sendTable(t, alice, bob, tc.transport, []int64{0, 1, 1 << 20, bigSize()})
		})
	}
}

// sendHook adapts sendTable to a test. Either field may be nil.
type sendHook struct {
	// before prepares the sender of the i-th file, at path, before it is
	// sent.
	before func(t *testing.T, i int, path string, s *filetransfer.Sender)
	// after checks more of the i-th transfer, once sendTable's own checks
	// passed: sent is the sender's result, got the receiver's.
	after func(t *testing.T, i int, path string, sent, got filetransfer.Result)
}

// sendTable sends a file of each size from alice to bob over transport
// and checks each arrives byte-identical, verified by both sides, over
// that transport. hooks adapt it to a test.
func sendTable(t *testing.T, alice, bob *peer, transport string, sizes []int64, hooks ...sendHook) {
	t.Helper()
	for i, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path, sum := randomFile(t, fmt.Sprintf("f%d.bin", i), size, uint64(i))
			src, err := filetransfer.FileSource(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			s := filetransfer.Sender{Transports: []string{transport}}
			for _, h := range hooks {
				if h.before != nil {
					h.before(t, i, path, &s)
				}
			}
			res, err := s.Send(ctx, alice.m, bob.jid, src)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if !res[0].Verified || res[0].Transport != transport {
				t.Fatalf("sender's result: verified=%v transport=%s", res[0].Verified, res[0].Transport)
			}
			r := bob.result(t)
			checkReceived(t, r, sum, size)
			if r.Transport != transport {
				t.Fatalf("received over %s, want %s", r.Transport, transport)
			}
			for _, h := range hooks {
				if h.after != nil {
					h.after(t, i, path, res[0], r)
				}
			}
			_ = os.Remove(r.Path)
		})
	}
}

// TestFallbackToIBB offers S5B first with no candidate anyone can reach:
// the session replaces the transport with IBB by itself and completes.
func TestFallbackToIBB(t *testing.T) {
	srv := prosody.Get(t)
	// No direct candidates and no proxy: S5B cannot connect on either side.
	o := peerOpts{s5b: socks5.Settings{NoDirect: true, NoProxyDiscovery: true, NegotiationTimeout: 5 * time.Second}}
	alice := newPeer(t, srv, "alice", o)
	bob := newPeer(t, srv, "bob", o)
	path, sum := randomFile(t, "fallback.bin", 1<<20, 7)
	src, err := filetransfer.FileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := filetransfer.Sender{Transports: []string{socks5.NS, ibb.NSTransport}}
	res, err := s.Send(ctx, alice.m, bob.jid, src)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Transport != ibb.NSTransport {
		t.Fatalf("carried by %s, want the IBB fallback", res[0].Transport)
	}
	checkReceived(t, bob.result(t), sum, 1<<20)
}

// TestSeveralFiles sends three files in one session.
func TestSeveralFiles(t *testing.T) {
	srv := prosody.Get(t)
	alice := newPeer(t, srv, "alice", peerOpts{})
	bob := newPeer(t, srv, "bob", peerOpts{})
	var srcs []filetransfer.Source
	sums := map[string]string{}
	for i, size := range []int64{10, 300 << 10, 2 << 20} {
		name := fmt.Sprintf("multi-%d.bin", i)
		path, sum := randomFile(t, name, size, uint64(100+i))
		src, err := filetransfer.FileSource(path)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
		sums[name] = sum
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := filetransfer.Send(ctx, alice.m, bob.jid, srcs...)
	if err != nil {
		t.Fatal(err)
	}
	sid := res[0].SID
	for _, r := range res {
		if r.SID != sid {
			t.Fatalf("files went in sessions %s and %s, want one", sid, r.SID)
		}
	}
	for range srcs {
		r := bob.result(t)
		st, _ := os.Stat(r.Path)
		var size int64
		if st != nil {
			size = st.Size()
		}
		checkReceived(t, r, sums[r.Name], size)
	}
}

// cutMethod wraps a transport method so that the first stream it yields
// dies after limit bytes have been written: a transfer killed half way.
type cutMethod struct {
	jingle.TransportMethod
	limit int64
	cut   atomic.Bool
}

func (m *cutMethod) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t, err := m.TransportMethod.NewTransport(ctx, p)
	if err != nil {
		return nil, err
	}
	return &cutTransport{StreamTransport: t.(jingle.StreamTransport), m: m}, nil
}

type cutTransport struct {
	jingle.StreamTransport
	m *cutMethod
}

func (t *cutTransport) Dial(ctx context.Context) (net.Conn, error) {
	c, err := t.StreamTransport.Dial(ctx)
	if err != nil || t.m.cut.Swap(true) {
		return c, err
	}
	return &cutConn{Conn: c, left: t.m.limit}, nil
}

type cutConn struct {
	net.Conn
	left int64
}

var errCut = errors.New("e2e: stream killed")

func (c *cutConn) Write(b []byte) (int, error) {
	if int64(len(b)) > c.left {
		n, _ := c.Conn.Write(b[:c.left])
		c.left = 0
		c.Conn.Close() // kill the stream under both sides
		return n, errCut
	}
	n, err := c.Conn.Write(b)
	c.left -= int64(n)
	return n, err
}

// TestResume kills the stream at about half of a transfer, then sends the
// file again: the receiver resumes from its .part with a range and the
// whole file verifies.
func TestResume(t *testing.T) {
	const size = 8 << 20
	var part os.FileInfo
	second, sent := cutAndResend(t, "resume.bin", size, 42, [2]bool{false, false}, func(_ *peer, first filetransfer.Result) {
		var err error
		part, err = os.Stat(first.Path)
		if err != nil || part.Size() == 0 || part.Size() >= size {
			t.Fatalf("after the cut: .part %v (err %v), want a partial file", first.Path, err)
		}
		if _, err := os.Stat(filepathWithoutPart(first.Path)); !os.IsNotExist(err) {
			t.Fatalf("a complete-looking file exists after the cut (%v)", err)
		}
	})
	if second.Offset == 0 || sent.Offset != second.Offset {
		t.Fatalf("second transfer started at %d (sender says %d), want a resume from the .part (%d bytes)", second.Offset, sent.Offset, part.Size())
	}
	if second.Bytes != size-second.Offset {
		t.Fatalf("second transfer carried %d bytes, want %d", second.Bytes, size-second.Offset)
	}
}

// cutAndResend sends a file of size bytes (random, from seed) from alice to
// bob over S5B twice: first with the stream killed at half of the file,
// which must fail on both sides, then again, which must arrive verified.
// afterCut checks bob's result of the cut transfer before the second send.
// encrypt[0] and encrypt[1] say whether the cut send and the second one use
// JET. It returns bob's result of the second transfer and the sender's.
func cutAndResend(t *testing.T, name string, size int64, seed uint64, encrypt [2]bool, afterCut func(bob *peer, first filetransfer.Result)) (second, sent filetransfer.Result) {
	t.Helper()
	srv := prosody.Get(t)
	cut := &cutMethod{limit: size / 2}
	alice := newPeer(t, srv, "alice", peerOpts{
		s5b:       socks5.Settings{NoProxyDiscovery: true},
		transport: func(m jingle.TransportMethod) jingle.TransportMethod { cut.TransportMethod = m; return cut },
	})
	bob := newPeer(t, srv, "bob", peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}})
	path, sum := randomFile(t, name, size, seed)
	src, err := filetransfer.FileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var s [2]filetransfer.Sender
	for i := range s {
		s[i].Transports = []string{socks5.NS}
		if encrypt[i] {
			s[i].Secure = secureWith(alice)
		}
	}
	if _, err := s[0].Send(ctx, alice.m, bob.jid, src); err == nil {
		t.Fatal("the cut transfer succeeded")
	}
	first := bob.result(t)
	if first.Err == nil {
		t.Fatal("bob reports the cut transfer as a success")
	}
	afterCut(bob, first)
	res, err := s[1].Send(ctx, alice.m, bob.jid, src)
	if err != nil {
		t.Fatalf("second send: %v", err)
	}
	second = bob.result(t)
	checkReceived(t, second, sum, size)
	return second, res[0]
}

func filepathWithoutPart(p string) string {
	if len(p) > 5 && p[len(p)-5:] == ".part" {
		return p[:len(p)-5]
	}
	return p
}
