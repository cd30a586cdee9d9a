// Package ice implements ICE as a Jingle transport for streams: XEP-0176
// ICE-UDP with XEP-0320 DTLS fingerprints, carrying the content's bytes
// over a WebRTC data channel (SCTP over DTLS), in the two dialects in use:
// XEP-0343 and Conversations' webrtc-datachannel. STUN and TURN servers
// come from configuration or from the user's own server (XEP-0215).
//
// ICE is what gets two peers behind NATs connected without a SOCKS5 proxy,
// and what Conversations, Libervia, StanzaJS and Psi use for file transfer.
//
// # Use
//
// Register one [Method] per dialect on a jingle.Manager, sharing a Config,
// and offer the namespaces the peer advertises ([PeerNamespaces] of its
// disco#info features), in order of preference:
//
//	cfg := ice.Config{Discovery: &ice.Discovery{}} // TURN from the own server
//	m.RegisterTransport(&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg})
//	m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343, Config: cfg})
//	...
//	sender := &filetransfer.Sender{Transports: ice.PeerNamespaces(peerFeatures)}
//
// Each content's transport is a [*Link], a jingle.StreamTransport whose
// Dial returns a [*Conn] (a net.Conn). Dial fails with an error wrapping
// jingle.ErrTransportFailed when no connection could be made, so the
// session falls back to the next method; it fails with a [*SecurityError]
// (wrapping [ErrFingerprintMismatch], not ErrTransportFailed) when a DTLS
// certificate does not match its signalled fingerprint: nothing has been
// exchanged then, and the application should terminate the session with
// the reason the error carries (security-error).
//
// # Dialects and namespaces
//
// The session layer picks a transport method by the namespace of
// <transport/>, so the two dialects are two methods:
//
//   - DialectWebRTCDataChannel, urn:xmpp:jingle:transports:webrtc-datachannel:1
//     (Conversations ≥ 2.13, Libervia): a <transport/> with sctp-port and
//     max-message-size around an ICE-UDP <transport/> that holds ufrag,
//     pwd, fingerprint and candidates; transport-info wraps the same way.
//     Each side opens its own data channel, writes on it and reads the
//     peer's: Conversations only reads a channel the other side opened.
//   - DialectXEP0343, urn:xmpp:jingle:transports:ice-udp:1 with an
//     <sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1'/> child
//     (XEP-0343 0.3.1: StanzaJS 12, Psi). The offerer opens one channel
//     labelled with the content name and both sides use it both ways.
//     StanzaJS's habits are accepted: no initiator attribute, a BUNDLE
//     <group/> (carried by the session layer as unknown <jingle/> content),
//     candidates without id, generation or network, <gathering-complete/>
//     (which this side also sends in this dialect). Psi writes the same
//     element in urn:xmpp:jingle:transports:ice:0: a Method with NS set to
//     [NSICE0] speaks it.
//
// The ICE-UDP namespace is also RTP's (XEP-0167). A data channel offer is
// recognised by its <sctpmap/>; this package refuses offers without one,
// which is where the datagram transport of the RTP issue plugs in (same
// Method, a DatagramTransport for offers without <sctpmap/>).
//
// # Design: pion/ice, pion/dtls and pion/sctp rather than ORTC
//
// pion/webrtc's ORTC objects (ICEGatherer, ICETransport, DTLSTransport,
// SCTPTransport) map onto Jingle without SDP, but this package uses
// pion/ice, pion/dtls, pion/sctp and pion/datachannel directly:
//
//   - ICE restart: pion/webrtc's ICETransport has no public restart;
//     pion/ice's Agent.Restart does, and XEP-0176 restarts (a new ufrag and
//     pwd in transport-info) map onto it.
//   - Trickle on Jingle's terms: candidates are gathered from the start,
//     put into the offer or answer as far as they exist, and trickled in
//     transport-info only when the peer can take them (after
//     session-accept for the initiator, after Dial — that is after
//     accepting — for the responder, so that nothing about this host leaves
//     before the user agreed).
//   - The fingerprint is checked inside the DTLS handshake
//     (VerifyPeerCertificate), before Finished: a mismatch aborts the
//     handshake, so no application data record can ever be exchanged with
//     the wrong peer. Link.Stats counts DTLS records by type to show it.
//   - Tuning that the ORTC layer hides or fixes: socket buffers, the SCTP
//     receive window, message size, reading and writing channels directly
//     (detached) instead of through callbacks.
//   - Separable layers for RTP: agent.go (ICE: credentials, candidates,
//     generations, limits) and link.go (DTLS over ICE, with RFC 7983
//     demultiplexing where SRTP will plug in: today a filter on the DTLS
//     reader; SRTP alongside will need a demultiplexing goroutine with
//     deadlines) know nothing of SCTP; datachannel.go (SCTP and data
//     channels) knows nothing of ICE.
//
// # Throughput
//
// On loopback, on a shared two-core machine, pion's data channel with
// default settings moved 13–29 MB/s and this package 20–77 MB/s, 2.4 times
// as much in the median of twelve interleaved runs of
// BenchmarkBarePionDataChannel and BenchmarkICETransfer (1.3 times when
// other jobs saturated both cores, about 3 times when they did not). The
// gains, largest first: UDP socket buffers of 4 MiB (the kernel's 200 KiB
// overflow under a burst, and every loss halves SCTP's window); an SCTP
// receive window of 768 KiB, below pion/ice's 1 MB packet queue, so that a
// full window cannot overflow it and cost a one-second retransmission
// timeout (pion's default window is 1 MiB); bounded write buffering (2 MiB)
// with a low-water mark; 64 KiB messages; channels read and written
// directly, with pooled read buffers; zero-checksum SCTP (RFC 9653) when
// the peer agrees; on Linux, datagrams sent in batches (sendmmsg) and,
// where the kernel has them, as segmented messages (UDP GSO) read back
// joined (UDP GRO): about 14 datagrams per system call. What remains is
// pion's per-packet cost (1228-byte SCTP packets, one DTLS record each,
// and about ten allocations and copies of each packet in pion/sctp and
// pion/dtls).
//
// # Privacy and limits
//
// Config.RelayOnly offers relayed candidates only, without related
// addresses: the peer learns the TURN server's address, never this host's.
// A peer's candidates are checked one by one (Candidate.Parse) and the bad
// ones skipped; at most Config.MaxRemoteCandidates are used and at most
// Config.MaxRestarts restarts are followed; at most four incoming data
// channels are accepted; messages larger than Config.MaxMessageSize end
// the stream.
package ice
