// Package linklocal implements serverless messaging, XEP-0174 Link-Local
// Messaging: XMPP entities on a LAN find each other with DNS-SD over
// multicast DNS and talk over XML streams opened straight over TCP, with
// no server and no account. Jingle sessions and file transfer then run
// exactly as with a server.
//
// # Presence
//
// A [Node] advertises the DNS-SD service instance "user@machine" of type
// _presence._tcp: a PTR record for the service type, an SRV record with the
// port it listens on and the host "machine.local.", an A record per
// interface, and a TXT record ([TXT]: txtvers=1, port.p2pj, nick, status,
// msg, optional personal fields, and the XEP-0115 caps node/hash/ver). It
// announces itself when starting, answers queries, and sends goodbye
// packets when closing. It browses for the other instances and keeps them
// as [Peer]s: name, address, SRV port, TXT record. Its own instance is
// filtered out. A TXT record that is too large ([MaxTXTBytes]) or of
// another txtvers is ignored (the peer stays reachable); port.p2pj is
// never dialled, only the SRV port (XEP-0174 §10). Multicast DNS is
// github.com/pion/mdns/v2 plus a small socket of this package's own for
// announcements and goodbyes, which pion does not send.
//
// # Streams
//
// Streams are XMPP streams without TLS, SASL or resource binding (XEP-0174
// §4): the initiator sends a stream header from its name to the peer's,
// the recipient answers with its own and, when both say version='1.0',
// with stream features carrying its disco#info (XEP-0174 §8). The
// recipient checks the claimed name as XEP-0174 §7 asks: the connection
// must come from an address the name is advertised (or was added) at, or
// the stream is refused with an invalid-from stream error. Anything else
// than a stream header as the first element gets a stream error too
// (invalid-namespace, not-well-formed, restricted-xml). On an open stream,
// every stanza's 'from' must be the stream's peer (an invalid-from stream
// error ends the stream otherwise) and is set when missing; stanzas for
// anyone but this node are dropped.
//
// # Routing
//
// Node implements jingle.IQSender: SendIQElement picks the open stream to
// the IQ's 'to', or dials the peer (resolving it over mDNS when needed).
// Every stream, incoming or outgoing, hands its stanzas to the one
// Node.Handler, so a single jingle.Manager serves every peer:
//
//	m := &jingle.Manager{}
//	m.RegisterApplication(ftHandler)
//	ibbm := &ibb.Method{}
//	m.RegisterTransport(ibbm)
//	node := &linklocal.Node{Name: "juliet@pronto", Caps: caps}
//	node.Handler = mux.New(stanza.NSClient, m.Handler(), ibbm.Handler(), xmppclient.HandleDisco(caps))
//	m.SetStream(node)
//	err := node.Start(ctx)
//
// # Without multicast
//
// [Node.AddPeer] reaches a peer at a known address: by name (a stream from
// that name must then come from that host), or with an empty name, which
// connects at once and learns the name from the peer's stream header.
// Set Node.NoMulticast to run without mDNS at all. A receiving node only
// accepts names it can check; Node.AcceptUnadvertised also accepts names
// nobody advertises, at the address they connect from.
//
// # Limits
//
// [Limits] bound the streams, the peers remembered, the bytes read before
// a stream is open and every wait. Names are one DNS label: at most 63
// bytes, no '.' in the user part, an ASCII machine part ([ParseName]). Only
// IPv4 is advertised and browsed.
package linklocal
