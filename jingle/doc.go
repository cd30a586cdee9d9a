// Package jingle implements the Jingle session layer of XEP-0166: sessions
// that negotiate contents — what is exchanged, such as a file or an audio
// stream — and transports — how the bytes travel, such as in-band
// bytestreams, SOCKS5 or ICE — between two XMPP entities.
//
// # The model
//
// A [Session] is one conversation between this entity and a peer, named by
// a session id (sid) that the initiator picks. It has a state — pending
// from session-initiate, active from session-accept, ended from
// session-terminate (XEP-0166 §5.1) — and a set of contents. Each content is
// named by (creator, name) and pairs one application description with one
// transport:
//
//	Session (sid, initiator, responder, state)
//	└── Content (creator, name, senders)
//	    ├── description  → an Application, chosen by namespace
//	    ├── transport    → a TransportMethod, chosen by namespace
//	    └── security     (optional precondition, carried as is)
//
// This package knows no application and no transport by name. They plug in
// through two small interfaces registered on a [Manager]:
//
//   - An [Application] (file transfer, RTP) lists its description
//     namespaces and is handed every incoming session for them in
//     HandleSession. It accepts or declines, reads the peer's actions with
//     [Session.NextEvent], and uses the transport's connection.
//   - A [TransportMethod] (IBB, SOCKS5, ICE) makes one [Transport] per
//     content. A transport offers its <transport/> element, takes the
//     peer's answer (SetRemote) and the peer's transport-info (HandleInfo),
//     may send transport-info of its own (Signaler, for trickled
//     candidates or candidate-used), and finally yields a connection: a
//     [StreamTransport] a net.Conn, a [DatagramTransport] one
//     net.PacketConn per component.
//
// Descriptions and transports travel as [Element] values: raw XML kept
// exactly as it came, which the plug-in owning the namespace decodes. The
// wire types ([Jingle], [Content], [Reason], [Error]) mirror XEP-0166 with
// encoding/xml tags and round-trip every example of the XEP.
//
// # Flow
//
// The initiator calls [Manager.Initiate] with one [Offer] per content; each
// offer names its transport methods in order of preference. The responder's
// Manager checks the request, acknowledges it, creates the transports from
// the offer and calls the Application's HandleSession, which calls
// [Session.Accept] (or [Session.Terminate] to decline). Both sides then call
// [Session.Conn] to get the content's stream. When a stream transport fails
// (its Dial returns an error wrapping [ErrTransportFailed]), the initiator
// replaces it with the next method of its offer by transport-replace, and
// the responder waits for that replacement; with no method left the session
// ends with failed-transport. Contents are added and removed, directions
// changed and transports replaced with the Session's methods of the same
// names, and each action of the peer arrives as an [Event].
//
// # Checks
//
// Every inbound action is checked before anything changes: the sender must
// be the session's peer (a session is found by the sender's full JID and
// the sid, so a third party gets unknown-session); the action must fit the
// state (else out-of-order); names, creators, senders and reasons must be
// valid (else bad-request); an informational payload the application does
// not understand gets unsupported-info; crossing session-initiates and
// transport-replaces are settled by the tie-break rules of §7.2.16. A
// session-initiate for an unknown application or transport is acknowledged
// and then terminated with unsupported-applications or
// unsupported-transports, as §6.3.2 asks. [Limits] bound the number of
// sessions, contents, queued actions and the size of a <jingle/> element;
// beyond them the peer gets resource-constraint or policy-violation and
// nothing changes.
//
// # Concurrency
//
// mellium's Serve holds the XMPP stream while a stanza handler runs, so the
// Manager's handler only checks, changes state and answers. Everything that
// may block or send — creating transports, handing them the peer's
// candidates, answering a transport-replace, delivering events — runs on
// the session's own goroutine, in the order the actions arrived. The
// Manager owns that goroutine and the applications' HandleSession
// goroutines; [Manager.Close] terminates the live sessions and waits for
// all of them.
package jingle
