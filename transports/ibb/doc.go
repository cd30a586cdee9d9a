// Package ibb implements the Jingle In-Band Bytestreams transport method
// (XEP-0261) on top of XEP-0047 In-Band Bytestreams: a reliable byte
// stream carried as base64 chunks in IQ stanzas over the XMPP stream
// itself. It is the transport of last resort — slow, but it works wherever
// the two parties can exchange stanzas.
//
// # Use
//
// Register a [Method] on the jingle.Manager and add its [Method.Handler]
// to the same mux as the Manager's handler:
//
//	ibbm := &ibb.Method{}
//	m.RegisterTransport(ibbm)
//	mux.New(stanza.NSClient, m.Handler(), ibbm.Handler())
//
// A content whose transport is IBB then yields a [*Conn] from
// jingle.Session.Conn.
//
// # Negotiation
//
// The side that proposes the transport (the initiator, for a
// session-initiate) offers <transport block-size sid/> with a fresh random
// sid and [Method.BlockSize] (default 4096, the size XEP-0047 recommends).
// The other side answers with the same sid and the block size lowered to
// its [Method.MaxBlockSize] if needed — never raised: an answer that
// raises it, or changes the sid, makes the transport fail (Dial returns an
// error wrapping jingle.ErrTransportFailed, and the session may fall back).
// An offer with a block-size above 65535 (XEP-0047 §2.1), zero or not a
// number is refused by NewTransport, so the session layer declines it.
//
// As XEP-0261 §2.1 asks, once the answer has arrived the proposing side
// also sends the XEP-0047 <open/> with the negotiated block-size and sid;
// the other side accepts exactly that open: from the peer's full JID (an
// IBB sid is only unique with its peer, so streams are looked up by
// both), for the sid of its transport, once, and with a block-size no
// larger than negotiated. Everything else is refused and changes nothing:
// an open for an unknown sid or from anyone else gets not-acceptable, a
// second open not-acceptable, a larger block-size resource-constraint
// (XEP-0047 §2.1), a malformed one bad-request. A smaller block-size is
// taken and then applies to both directions. Should the peer send the
// open although this side proposed (some implementations tie the open to
// the session initiator), it is accepted as long as the stream is not
// open yet.
//
// # Data
//
// Write splits the bytes into blocks of the negotiated size and sends each
// as <data seq sid/> in an IQ set, seq counting from 0 and wrapping from
// 65535 to 0. Up to [Method.Window] IQs are in flight, and up to
// [Method.MaxInFlight] over all the Method's streams; they are written to
// the XMPP stream strictly in seq order (each waits until the previous
// one's payload has been consumed by the encoder) and then wait for their
// answers concurrently. Write returns as soon as its last block is handed
// over — like a TCP write — and Close waits for every acknowledgement, so
// Close returning nil means the peer acknowledged every byte.
//
// On receipt, a chunk must come from the peer's full JID for an open
// stream (else item-not-found, and the stream is untouched), carry the
// next seq (else unexpected-request), be valid base64 (else bad-request;
// see [DecodeBase64] for the exact rules, which are strict RFC 4648 §4 but
// skip XML white space) and decode to at most the block size (else
// bad-request). A chunk failing the last three checks is a chunk lost:
// XEP-0047 §2.2 forbids processing it or anything after it, so the stream
// breaks — the reader gets the bytes received so far and then an error
// wrapping [ErrBroken] instead of io.EOF, so a truncated transfer never
// looks complete — and this side sends <close/>. Chunks carried in
// messages (stanza='message') are accepted too, with the same checks;
// this side always sends IQs.
//
// A sender whose chunk is refused breaks its stream too and sends
// <close/>, as §2.2 requires. A chunk that gets no answer within
// [Method.IQTimeout], or a delivery error from the servers
// (recipient-unavailable, remote-server-timeout), also breaks the stream,
// but without <close/>: §2.2 leaves that case to the higher-level session,
// and a <close/> would let the peer's reader see a clean end after a gap
// it cannot know about. The application learns it from Write or Close and
// ends the Jingle session; the peer's reader then gets
// [ErrTransportClosed].
//
// Close on a Conn waits for the acknowledgements, sends <close/> and
// waits for its answer; the peer's reader then gets io.EOF after all the
// data — IBB has no half-close, so the close ends both directions, and the
// peer's Writes return [ErrPeerClosed]. Closing the Jingle transport (the
// session ended) closes an open stream the same way but without waiting
// long, and leaves the data already received readable.
//
// # Flow control
//
// mellium's Serve runs one stanza handler at a time and the handler must
// answer its IQ before returning, so an IBB receiver has two ways to slow
// a sender down: answer later (by waiting inside the handler) or refuse. A
// sender with a window of W IQs stops after W unanswered chunks, so
// answering later is real backpressure; but a waiting handler holds the
// whole XMPP stream — no other stanza is read, including the answers to
// this side's own requests — so it must be short.
//
// The receiver therefore acknowledges a chunk at once while it fits in the
// receive buffer of [Method.ReadBuffer] bytes (default 1 MiB; an empty
// buffer takes any chunk). When it does not fit, the handler waits for the
// reader to make room, at most [Method.HoldTimeout] (default 5s); a reader
// that keeps up even slowly thus paces the sender chunk by chunk. A reader
// that stops reading for longer gets the stream refused: the chunk is
// answered resource-constraint (type wait) and the stream breaks and is
// closed. Memory per stream is bounded by ReadBuffer plus one block, and
// the XMPP stream is never held longer than HoldTimeout per chunk. The
// default buffer holds more than a full default window of the largest
// blocks (8 × 65535), so a reader that keeps reading never makes the
// handler wait. An application that reads and writes the same Conn from
// one goroutine must not let a Write block while data it has not read
// piles up, or the hold times out.
//
// A reader that has caught up with the data need not keep a goroutine
// blocked in Read: [Conn.AfterReadable] calls a function once a Read would
// not block (filetransfer's receiving worker parks that way).
//
// Refusing with a wait-type error and letting the sender retry would not
// hold the stream, but XEP-0047 defines no retry for data errors (the
// sender must close), so no other implementation would understand it.
//
// # Performance
//
// Base64 costs a third more bytes, encoding/xml reads character data one
// byte at a time and escapes it rune by rune (Payloads takes <data/> text
// off both paths; the figures below predate it), so IBB is CPU-bound long
// before a local network is saturated: on a 2-core machine, one stream
// over the in-memory test network (which decodes and re-encodes every
// stanza once more) moves
// 15–38 MB/s with 4096-byte blocks and 30–60 MB/s with 65535. Through a
// stock Prosody 0.12 on loopback with TLS it moves 4–9 MB/s with
// 4096-byte blocks but only 2–2.6 MB/s with 65535, whatever the window:
// Prosody's event loop sleeps at least min_wait (1 ms) between the TLS
// records of a large stanza. With network_settings = { min_wait = 0.00001 }
// the same server gives 16–19 MB/s with 65535-byte blocks and a window of
// 4 or more. Hence the default block size stays at the XEP's 4096 and the
// default window at 8; BenchmarkIBB and BenchmarkProsodyIBB measure both.
//
// # Why not mellium.im/xmpp/ibb
//
// mellium's ibb package (v0.23.0) could not be used as is: Flush does not
// flush its base64 encoder, so the last bytes of a write wait for Close;
// SetReadDeadline is ignored; its stream map is read without the lock
// that guards its writes; sessions are keyed by sid alone, so anyone who
// learns a sid can inject or close; and the handler returns errors for
// malformed input, which ends the whole XMPP stream. The protocol is
// small, and this package also needs what mellium's does not offer: the
// Jingle negotiation, a window of IQs in flight, bounded buffering with
// explicit backpressure, and errors that tell a truncated stream from a
// finished one.
package ibb
