package ice

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"
)

// dtlsRole is this side's role in the DTLS handshake.
type dtlsRole int

const (
	dtlsClient dtlsRole = iota + 1 // setup='active': sends ClientHello
	dtlsServer                     // setup='passive'
)

// Stats counts what crossed the wire of one transport. DTLS records are
// counted by content type as they pass between the ICE connection and the
// DTLS layer, so that tests can show that no application data was
// exchanged (as after a fingerprint mismatch).
type Stats struct {
	// ApplicationRecordsSent and ApplicationRecordsReceived count DTLS
	// records of content type application_data (23).
	ApplicationRecordsSent     uint64
	ApplicationRecordsReceived uint64
	// HandshakeRecordsSent and HandshakeRecordsReceived count records of
	// content type handshake (22).
	HandshakeRecordsSent     uint64
	HandshakeRecordsReceived uint64
	// BytesSent and BytesReceived count data channel payload.
	BytesSent     uint64
	BytesReceived uint64
}

// DTLS content types (RFC 6347).
const (
	recordHandshake   = 22
	recordApplication = 23
)

// counters is the live form of Stats.
type counters struct {
	appSent, appRecv, hsSent, hsRecv, bytesSent, bytesRecv atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		ApplicationRecordsSent: c.appSent.Load(), ApplicationRecordsReceived: c.appRecv.Load(),
		HandshakeRecordsSent: c.hsSent.Load(), HandshakeRecordsReceived: c.hsRecv.Load(),
		BytesSent: c.bytesSent.Load(), BytesReceived: c.bytesRecv.Load(),
	}
}

// isDTLS reports whether a datagram is DTLS (RFC 7983: first byte 20–63).
func isDTLS(b []byte) bool { return len(b) > 0 && b[0] >= 20 && b[0] <= 63 }

// dtlsPath is the ICE connection as the DTLS layer sees it: only DTLS
// datagrams pass (RFC 7983 demultiplexing); others are handed to other,
// the place where the RTP issue plugs SRTP in, and dropped when it is nil.
// Records are counted on the way.
type dtlsPath struct {
	net.Conn
	n     *counters
	other func([]byte)
}

func (p *dtlsPath) Read(b []byte) (int, error) {
	for {
		n, err := p.Conn.Read(b)
		if err != nil {
			return n, err
		}
		if isDTLS(b[:n]) {
			countRecords(b[:n], &p.n.hsRecv, &p.n.appRecv)
			return n, nil
		}
		if p.other != nil {
			p.other(b[:n])
		}
	}
}

// SetReadDeadline stops a blocked Read when t has passed. pion/ice's
// connection has no deadlines, and pion/dtls sets a past deadline only to
// stop its read loop for good — when the handshake failed or the
// connection is being closed — so the ICE connection is closed then.
func (p *dtlsPath) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		return p.Conn.Close()
	}
	return nil
}

// SetDeadline implements net.Conn (see SetReadDeadline).
func (p *dtlsPath) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn: ICE writes do not block.
func (p *dtlsPath) SetWriteDeadline(time.Time) error { return nil }

func (p *dtlsPath) Write(b []byte) (int, error) {
	countRecords(b, &p.n.hsSent, &p.n.appSent)
	return p.Conn.Write(b)
}

// countRecords counts the records of one datagram (DTLS may pack several:
// 13-byte header with the length in its last two bytes).
func countRecords(b []byte, hs, app *atomic.Uint64) {
	for len(b) >= 13 {
		switch b[0] {
		case recordHandshake:
			hs.Add(1)
		case recordApplication:
			app.Add(1)
		}
		l := int(b[11])<<8 | int(b[12])
		if 13+l > len(b) {
			return
		}
		b = b[13+l:]
	}
}

// dataChannelSRTPProfiles are the SRTP protection profiles a data-channel
// DTLS server accepts in a client's use_srtp extension, in order of
// preference (those libwebrtc offers).
func dataChannelSRTPProfiles() []dtls.SRTPProtectionProfile {
	return []dtls.SRTPProtectionProfile{
		dtls.SRTP_AEAD_AES_128_GCM,
		dtls.SRTP_AEAD_AES_256_GCM,
		dtls.SRTP_AES128_CM_HMAC_SHA1_80,
		dtls.SRTP_AES128_CM_HMAC_SHA1_32,
	}
}

// handshakeDTLS runs the DTLS handshake over an ICE connection. The peer's
// certificate is checked against remote() inside the handshake; a
// mismatch, or the peer refusing this side's certificate, is a
// SecurityError. Other failures wrap jingle.ErrTransportFailed.
func handshakeDTLS(ctx context.Context, ice net.Conn, role dtlsRole, cert *Certificate, remote func() []Fingerprint, n *counters) (*dtls.Conn, error) {
	path := &dtlsPath{Conn: ice, n: n}
	cfg := dtlsConfig(cert, remote)
	if role == dtlsServer {
		// libwebrtc (e.g. @roamhq/wrtc 0.10.0 under StanzaJS 12.22.1) and
		// browsers always offer use_srtp when they are the DTLS client, also
		// on a data-channel-only association. RFC 5764 §4.1.1 lets a server
		// that wants no SRTP ignore the extension, but pion/dtls v2 has no
		// such option: it aborts the handshake when no profile matches. So
		// the server accepts the usual profiles, as pion/webrtc does; no
		// SRTP keys are ever exported on this association. The client side
		// offers none (a server may ignore it, and then pion's client would
		// fail the handshake).
		cfg.SRTPProtectionProfiles = dataChannelSRTPProfiles()
	}
	var (
		c   *dtls.Conn
		err error
	)
	if role == dtlsClient {
		c, err = dtls.ClientWithContext(ctx, path, cfg)
	} else {
		c, err = dtls.ServerWithContext(ctx, path, cfg)
	}
	if err != nil {
		return nil, classifyDTLSError(err)
	}
	return c, nil
}
