// Package xmppclient is jinglekit's XMPP client plumbing on top of
// mellium.im/xmpp.
//
// It provides:
//
//   - [Dial]: a client-to-server login with mandatory STARTTLS (certificate
//     verification against the system pool and/or a CAFile), SASL
//     SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN (PLAIN only inside TLS) and
//     resource binding, to an explicit host:port or to the endpoints found by
//     DNS SRV lookup. Failures a caller must branch on are typed: [ErrAuth],
//     [ErrConnect] and [ErrTLS].
//   - [Client]: owner of the *xmpp.Session and of the goroutine that serves
//     it; [New] takes over any other negotiated session that nobody serves
//     yet. The caps and disco helpers ([HandleDisco], [SendCapsPresence],
//     [GetInfo], [Disco]) take a plain *xmpp.Session, so they also work on
//     sessions served elsewhere, such as those of xmpptest.
//   - [Caps]: XEP-0115 entity capabilities (the sha-1 ver string) and the
//     disco#info answer built from the same data, served by [HandleDisco].
//   - [Disco]: disco#info queries to peers with a bounded cache keyed by the
//     verified caps ver string learned from presence ([Disco.HandlePresence]).
//
// # Handlers
//
// mellium's Serve holds the session while a handler runs: handlers in this
// package reply only through the xmlstream.TokenReadEncoder they are given and
// never send on the session themselves.
package xmppclient
