package ice

import (
	"context"
	"slices"

	"github.com/jinglekit/jinglekit/jingle"
)

// Dialect is the way a data channel transport is written in Jingle. Both
// are in use; a Method speaks one, and a Manager registers one Method per
// dialect.
type Dialect int

const (
	// DialectXEP0343 is XEP-0343 0.3.1: an ICE-UDP <transport/>
	// (urn:xmpp:jingle:transports:ice-udp:1) with an <sctpmap/> child, as
	// StanzaJS and Psi write it. The namespace is also the one of ICE-UDP
	// for RTP; an offer without <sctpmap/> is not a data channel and is
	// refused by this package.
	DialectXEP0343 Dialect = iota
	// DialectWebRTCDataChannel is urn:xmpp:jingle:transports:webrtc-datachannel:1
	// (Conversations since 2.13, Libervia): a wrapper with sctp-port and
	// max-message-size around an ICE-UDP <transport/>.
	DialectWebRTCDataChannel
)

func (d Dialect) String() string {
	switch d {
	case DialectXEP0343:
		return "xep-0343"
	case DialectWebRTCDataChannel:
		return "webrtc-datachannel"
	}
	return "unknown"
}

// Method is the ICE transport method for one dialect: a
// jingle.TransportMethod whose transports (*Link) are stream transports
// over a WebRTC data channel. Register one Method per dialect on a
// jingle.Manager, sharing a Config:
//
//	cfg := ice.Config{Discovery: &ice.Discovery{}}
//	m.RegisterTransport(&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg})
//	m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343, Config: cfg})
//
// and offer what the peer advertises (PeerNamespaces). A Method must not be
// copied after first use; set its fields before.
type Method struct {
	Dialect Dialect
	// NS overrides the namespace of a DialectXEP0343 method, for Psi's
	// urn:xmpp:jingle:transports:ice:0 (NSICE0). Empty means NSICEUDP.
	NS     string
	Config Config
}

// Namespace implements jingle.TransportMethod.
func (m *Method) Namespace() string {
	if m.Dialect == DialectWebRTCDataChannel {
		return NSWebRTCDataChannel
	}
	if m.NS != "" {
		return m.NS
	}
	return NSICEUDP
}

// Kind implements jingle.TransportMethod.
func (m *Method) Kind() jingle.TransportKind { return jingle.Stream }

// Features implements jingle.FeatureAdvertiser: DTLS (XEP-0320) and, for
// XEP-0343, DTLS-SCTP.
func (m *Method) Features() []string {
	if m.Dialect == DialectXEP0343 {
		return []string{NSDTLS, NSDTLSSCTP}
	}
	return []string{NSDTLS}
}

// NewTransport implements jingle.TransportMethod.
func (m *Method) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	return newLink(ctx, m, p)
}

// PeerNamespaces returns the ICE data channel namespaces a peer supports,
// given its service discovery features, in order of preference:
// webrtc-datachannel:1 first (Conversations, Libervia), then ICE-UDP with
// XEP-0343 when the peer also advertises DTLS-SCTP (StanzaJS, Psi).
func PeerNamespaces(features []string) []string {
	var out []string
	if slices.Contains(features, NSWebRTCDataChannel) {
		out = append(out, NSWebRTCDataChannel)
	}
	if slices.Contains(features, NSICEUDP) && slices.Contains(features, NSDTLSSCTP) {
		out = append(out, NSICEUDP)
	}
	return out
}
