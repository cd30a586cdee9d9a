// Package socks5 implements the Jingle SOCKS5 Bytestreams transport method
// (XEP-0260) over SOCKS5 Bytestreams (XEP-0065), directly between the
// parties or through a proxy.
//
// Register a [Method] on a jingle.Manager. Each content gets a transport
// that:
//
//   - offers candidates: direct ones (this host's addresses, on the
//     Method's SOCKS5 streamhost, one listener shared by all its
//     transports, served with github.com/armon/go-socks5; see Streamhost
//     below) with priority 2^16×126 + local
//     preference, and proxy ones (configured in [Settings], or discovered
//     on the user's server and cached by the Method) with 2^16×10 + local
//     preference;
//   - tries the peer's candidates, highest priority first and staggered,
//     with its own SOCKS5 client ([Handshake]: no authentication, CONNECT
//     to the domain name DST.ADDR, port 0), and tells the peer
//     candidate-used or candidate-error in transport-info;
//   - settles on the nominated candidate (XEP-0260 §2.4): the one of
//     higher priority, the initiator's choice on a tie; when it is a proxy,
//     the party that offered it connects to the proxy, activates the
//     bytestream (XEP-0065 activate) and sends activated, or proxy-error.
//
// The bytestream Dial returns is a plain TCP connection to the peer or to
// the proxy, with CloseWrite for half-close. When no candidate works on
// either side, when the peer reports a proxy error, names a candidate that
// is not ours, or the negotiation outlasts Settings.NegotiationTimeout,
// Dial fails with an error wrapping jingle.ErrTransportFailed; the session
// layer then falls back (transport-replace, typically to IBB). The
// transport never terminates a session itself.
//
// # DST.ADDR
//
// XEP-0065 computes DST.ADDR as SHA1(SID + requester JID + target JID),
// hex-encoded; XEP-0260 §2.2 makes the party that offers a candidate the
// requester: SHA1(sid + initiator + responder) for the initiator's
// candidates, SHA1(sid + responder + initiator) for the responder's (the
// transport sid and full JIDs; see [DstAddr]). This is also what the
// proxy's activation checks, since the offering party activates. Some
// peers use SHA1(sid + initiator + responder) for every candidate, so:
//
//   - for each transport, the local streamhost accepts exactly two
//     DST.ADDRs, SHA1(sid + us + peer) and SHA1(sid + peer + us), and
//     closes every other connection (and every command but CONNECT, every
//     address given as an IP);
//   - connecting to a direct candidate of the peer, the transport sends
//     SHA1(sid + peer + us) and, if the peer's streamhost refuses it, the
//     peer's dstaddr attribute and then SHA1(sid + us + peer); to a proxy
//     candidate of the peer, the peer's dstaddr when it is well-formed
//     (the peer activates with it), else SHA1(sid + peer + us).
//
// # Streamhost
//
// The direct candidates of all the transports of a Method share one TCP
// listener (on Settings.ListenHost, in Settings.PortMin–PortMax), opened
// by the first transport that offers one and closed with the last: 1,000
// sessions negotiating at once use one port and one accepting goroutine.
// The streamhost routes each connection by the DST.ADDR of its CONNECT
// request to the transport expecting it; the port is known to every peer
// that got a candidate, but a DST.ADDR hashes the stream's random sid,
// which only the two parties (and their servers) know. A transport's own
// DST.ADDR, SHA1(sid + us + peer), takes precedence over another
// transport's claim on the same hash as the peer-first order, so that one
// Method serving both ends of a session in one process routes each
// connection to the end whose candidate was used. A transport removes its
// DST.ADDRs as soon as it is settled; a connection asking for one after
// that is refused. With Settings.NoDirect, no listener is opened.
//
// # Peers
//
// The order of actions of real peers is accepted: Libervia sends
// candidate-used before session-accept, and reports a failed activation
// of its own proxy with proxy-error followed by transport-replace.
// The side that received the offer connects to the peer's candidates only
// once its application calls Dial (after accepting the session), so a
// declined session reveals none of its addresses.
//
// # Limits
//
// A transport considers at most [MaxCandidates] candidates of the peer,
// keeps at most 8 bytestreams opened on the streamhost for it, and stops
// accepting them as soon as it is settled. The streamhost serves at most
// 16 SOCKS5 handshakes at once per transport using it, each within
// Settings.HandshakeTimeout. Unless
// Settings.AllowLoopback is set, it neither offers nor connects to
// loopback addresses; it never connects to unspecified, multicast or
// link-local ones.
package socks5
