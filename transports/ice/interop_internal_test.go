package ice

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/dtls/v2"
	"github.com/pion/sctp"
)

// udpPeer is one end of a connected UDP pair on loopback.
type udpPeer struct {
	*net.UDPConn
	raddr *net.UDPAddr
}

func (p udpPeer) Read(b []byte) (int, error) {
	n, _, err := p.ReadFromUDP(b)
	return n, err
}
func (p udpPeer) Write(b []byte) (int, error) { return p.WriteToUDP(b, p.raddr) }
func (p udpPeer) RemoteAddr() net.Addr        { return p.raddr }

// foreignPair returns a DTLS connection for this package (checked against
// the foreign side's fingerprint, in role ours) and an SCTP association of
// a foreign implementation on the other end, as a browser or libwebrtc
// would run it.
func foreignPair(t *testing.T, ours dtlsRole) (net.Conn, func() *sctp.Association) {
	t.Helper()
	return foreignPairWith(t, ours, nil)
}

// foreignPairWith is foreignPair with the foreign DTLS configuration
// adjusted by tweak (when not nil) before its handshake.
func foreignPairWith(t *testing.T, ours dtlsRole, tweak func(*dtls.Config)) (net.Conn, func() *sctp.Association) {
	t.Helper()
	la, lb := loopbackUDP(t), loopbackUDP(t)
	pa := udpPeer{la, lb.LocalAddr().(*net.UDPAddr)}
	pb := udpPeer{lb, la.LocalAddr().(*net.UDPAddr)}
	myCert, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	theirCert, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	theirs := &dtls.Config{Certificates: []tls.Certificate{theirCert.TLS}, InsecureSkipVerify: true, ClientAuth: dtls.RequireAnyClientCert}
	if tweak != nil {
		tweak(theirs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		c   *dtls.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var c *dtls.Conn
		var err error
		if ours == dtlsClient {
			c, err = dtls.ServerWithContext(ctx, pb, theirs)
		} else {
			c, err = dtls.ClientWithContext(ctx, pb, theirs)
		}
		ch <- res{c, err}
	}()
	var n counters
	remote := []Fingerprint{{Hash: "sha-256", Value: theirCert.Fingerprint}}
	mine, err := handshakeDTLS(ctx, pa, ours, myCert, func() []Fingerprint { return remote }, &n)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	assocCh := make(chan *sctp.Association, 1)
	go func() {
		a, err := sctp.Client(sctp.Config{NetConn: r.c, LoggerFactory: pionLoggers{log: slog.New(slog.DiscardHandler)}})
		if err != nil {
			t.Error(err)
		}
		assocCh <- a
	}()
	t.Cleanup(func() {
		_ = mine.Close()
		_ = r.c.Close()
	})
	return mine, func() *sctp.Association { return <-assocCh }
}

// open runs openStream in the background while the foreign side sets up.
func open(ctx context.Context, dc net.Conn, p streamParams) func(t *testing.T) *Conn {
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := openStream(ctx, dc, p)
		ch <- res{c, err}
	}()
	return func(t *testing.T) *Conn {
		t.Helper()
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(r.c.shutdown)
		return r.c
	}
}

func testParams(role dtlsRole, openOwn bool) streamParams {
	return streamParams{
		role: role, openOwn: openOwn, label: "file",
		receiveWindow: DefaultReceiveWindow, maxRecvMessage: DefaultMaxMessageSize,
		sendMessage: 16 << 10, writeBuffer: DefaultWriteBuffer,
		log: slog.New(slog.DiscardHandler), n: &counters{},
	}
}

// writeMessages writes data on a foreign channel in 16 KiB messages, as
// browsers do.
func writeMessages(ch *datachannel.DataChannel, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), 16<<10)
		if _, err := ch.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func readAll(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForeignClientOffersSRTP: libwebrtc (StanzaJS 12.22.1 on
// @roamhq/wrtc 0.10.0, browsers) always sends use_srtp in its ClientHello
// when it takes the DTLS client role, also for a data-channel-only
// session. The data-channel server must complete the handshake and carry
// data, not abort with "client requested SRTP but we have no matching
// profiles".
func TestForeignClientOffersSRTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, profiles := range [][]dtls.SRTPProtectionProfile{
		// libwebrtc's offer, in its order.
		{dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AES128_CM_HMAC_SHA1_32},
		{dtls.SRTP_AES128_CM_HMAC_SHA1_80},
	} {
		dc, assoc := foreignPairWith(t, dtlsServer, func(c *dtls.Config) { c.SRTPProtectionProfiles = profiles })
		conn := open(ctx, dc, testParams(dtlsServer, false))
		a := assoc()
		ch, err := datachannel.Dial(a, 0, &datachannel.Config{ChannelType: datachannel.ChannelTypeReliable, Label: "filetransfer", LoggerFactory: pionLoggers{log: slog.New(slog.DiscardHandler)}})
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("s"), 40<<10)
		if err := writeMessages(ch, data); err != nil {
			t.Fatal(err)
		}
		c := conn(t)
		if got := readAll(t, c, len(data)); !bytes.Equal(got, data) {
			t.Fatal("data differs")
		}
		_ = ch.Close()
		_ = a.Close()
	}
}

// TestForeignChannels runs this package's stream against the channel
// habits of the clients it must interoperate with, over a real SCTP
// association of pion's.
func TestForeignChannels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	x := bytes.Repeat([]byte("x"), 100<<10)
	y := bytes.Repeat([]byte("y"), 100<<10)
	foreignCfg := func(label, proto string) *datachannel.Config {
		return &datachannel.Config{ChannelType: datachannel.ChannelTypeReliable, Label: label, Protocol: proto,
			LoggerFactory: pionLoggers{log: slog.New(slog.DiscardHandler)}}
	}

	// Conversations, as offerer (DTLS server): it opens its own channel
	// and writes on it, and reads only a channel the other side opened.
	t.Run("conversations", func(t *testing.T) {
		dc, assoc := foreignPair(t, dtlsClient)
		conn := open(ctx, dc, testParams(dtlsClient, true))
		peer := assoc()
		type acc struct {
			ch  *datachannel.DataChannel
			err error
		}
		accepted := make(chan acc, 1)
		go func() {
			ch, err := datachannel.Accept(peer, foreignCfg("", ""))
			accepted <- acc{ch, err}
		}()
		theirs, err := datachannel.Dial(peer, 1, foreignCfg("test", "xmpp-jingle"))
		if err != nil {
			t.Fatal(err)
		}
		c := conn(t)
		a := <-accepted
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.ch.Config.Label != "file" {
			t.Errorf("our channel's label %q", a.ch.Config.Label)
		}
		if err := writeMessages(theirs, x); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, c, len(x)); !bytes.Equal(got, x) {
			t.Fatal("read the wrong data")
		}
		go func() { _, _ = c.Write(y) }()
		if got := readAll(t, a.ch, len(y)); !bytes.Equal(got, y) {
			t.Fatal("peer read the wrong data")
		}
		_ = peer.Close()
	})

	// StanzaJS as offerer: it opens 'filetransfer' and sends the file; the
	// answerer only reads.
	t.Run("stanzajs-sends", func(t *testing.T) {
		dc, assoc := foreignPair(t, dtlsClient)
		conn := open(ctx, dc, testParams(dtlsClient, false))
		peer := assoc()
		go func() {
			ch, err := datachannel.Dial(peer, 1, foreignCfg("filetransfer", ""))
			if err == nil {
				_ = writeMessages(ch, x)
			}
		}()
		c := conn(t)
		if got := readAll(t, c, len(x)); !bytes.Equal(got, x) {
			t.Fatal("read the wrong data")
		}
		_ = peer.Close()
	})

	// StanzaJS as answerer: it reads the channel it is given.
	t.Run("stanzajs-receives", func(t *testing.T) {
		dc, assoc := foreignPair(t, dtlsServer)
		conn := open(ctx, dc, testParams(dtlsServer, true))
		peer := assoc()
		got := make(chan []byte, 1)
		go func() {
			ch, err := datachannel.Accept(peer, foreignCfg("", ""))
			if err != nil {
				got <- nil
				return
			}
			b := make([]byte, len(y))
			_, _ = io.ReadFull(ch, b)
			got <- b
		}()
		c := conn(t)
		if _, err := c.Write(y); err != nil {
			t.Fatal(err)
		}
		if b := <-got; !bytes.Equal(b, y) {
			t.Fatal("peer read the wrong data")
		}
		_ = peer.Close()
	})

	// Psi as offerer: one channel labelled with the content name, used
	// both ways.
	t.Run("psi", func(t *testing.T) {
		dc, assoc := foreignPair(t, dtlsClient)
		conn := open(ctx, dc, testParams(dtlsClient, false))
		peer := assoc()
		chc := make(chan *datachannel.DataChannel, 1)
		go func() {
			ch, err := datachannel.Dial(peer, 1, foreignCfg("file", ""))
			if err != nil {
				t.Error(err)
			}
			chc <- ch
		}()
		c := conn(t)
		theirs := <-chc
		go func() { _, _ = c.Write(y) }()
		if got := readAll(t, theirs, len(y)); !bytes.Equal(got, y) {
			t.Fatal("peer read the wrong data")
		}
		if err := writeMessages(theirs, x); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, c, len(x)); !bytes.Equal(got, x) {
			t.Fatal("read the wrong data")
		}
		// The peer closes its channel: we read io.EOF.
		_ = theirs.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 10)); err != io.EOF {
			t.Fatalf("after the peer's close: %d, %v; want io.EOF", n, err)
		}
		_ = peer.Close()
	})
}

// TestForeignOversizedMessage: a message larger than the announced
// max-message-size ends the stream with an error rather than being cut.
func TestForeignOversizedMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dc, assoc := foreignPair(t, dtlsClient)
	p := testParams(dtlsClient, false)
	p.maxRecvMessage = 64 << 10
	conn := open(ctx, dc, p)
	peer := assoc()
	go func() {
		ch, err := datachannel.Dial(peer, 1, &datachannel.Config{ChannelType: datachannel.ChannelTypeReliable, Label: "file",
			LoggerFactory: pionLoggers{log: slog.New(slog.DiscardHandler)}})
		if err != nil {
			return
		}
		peer.SetMaxMessageSize(1 << 20)
		_, _ = ch.Write(make([]byte, 16))
		_, _ = ch.Write(make([]byte, 200<<10))
	}()
	c := conn(t)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readAll(t, c, 16); len(got) != 16 {
		t.Fatal("first message lost")
	}
	n, err := c.Read(make([]byte, 1<<20))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized message: %d bytes, %v; want an error", n, err)
	}
	_ = peer.Close()
}

// TestCloseUnblocks: Close ends a Write blocked on a peer that does not
// read, and a blocked Read, at once (net.Conn's contract), without waiting
// for the queued data.
func TestCloseUnblocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dc, assoc := foreignPair(t, dtlsServer)
	conn := open(ctx, dc, testParams(dtlsServer, true))
	peer := assoc()
	go func() {
		_, _ = datachannel.Accept(peer, &datachannel.Config{LoggerFactory: pionLoggers{log: slog.New(slog.DiscardHandler)}})
	}()
	c := conn(t)
	werr := make(chan error, 1)
	go func() {
		// Far more than the peer's window and our write buffer: blocks.
		_, err := c.Write(make([]byte, 16<<20))
		werr <- err
	}()
	rerr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		rerr <- err
	}()
	time.Sleep(200 * time.Millisecond) // let both block
	select {
	case err := <-werr:
		t.Fatalf("Write returned before Close: %v", err)
	default:
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-werr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Write: %v, want net.ErrClosed", err)
	}
	if err := <-rerr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Read: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	_ = peer.Close()
}
