// Package filetransfer implements Jingle File Transfer (XEP-0234) with the
// hashes of XEP-0300, as a jingle.Application: a [Handler] receives files
// and serves file requests, a [Sender] (or [Send]) offers files, and
// [Handler.Fetch] requests one.
//
// # Receiving
//
// Register a Handler on the jingle.Manager. Every offered file is shown to
// its Policy (who offers what, how large, with which hash); accepted files
// are written to Dir:
//
//	h := &filetransfer.Handler{Dir: dir, Policy: filetransfer.AcceptFrom(alice)}
//	m.RegisterApplication(h)
//
// The offered name is untrusted: [SanitizeName] keeps the last path
// element, drops leading dots, control and invisible characters,
// normalises it (NFC) and bounds its length; a name ending in ".part" is
// renamed ("x.part" becomes "x_part") so that it is never taken for a
// partial file. The data lands in NAME.part, created with O_EXCL (and
// O_NOFOLLOW) when the first byte arrives — nothing is created for a file
// whose data never comes — and is renamed — without replacing
// anything, unless the Decision says Overwrite — only once its hash
// matches; an existing file makes the new one "NAME (1).ext". A file whose
// hash does not match, or whose sender sends more than it offered, is
// removed and the peer gets media-error (with <file-too-large/> for the
// latter); no complete-looking file is ever left behind. Limits bound the
// size, the number of files per session and the length of names.
//
// # Sending
//
// Send offers one content per file in a single session, with
// <hash-used/> in the offer; each file is hashed while it is sent (one pass
// over the source) and the hashes follow in a session-info <checksum/>.
// The receiver acknowledges each verified file with <received/>, except the
// last, whose session-terminate <success/> says it (XEP-0234 §6.7; StanzaJS
// stalls on a <received/>); it never waits for the answer to <received/>.
// Send returns one [Result] per file with the hash, the bytes, the
// transport and the duration, and an error errors.Is-able against
// [ErrDeclined], [ErrHashMismatch], [ErrTransport], [ErrTimeout],
// [ErrCanceled], [ErrTooLarge]…
//
// # The byte stream
//
// Each content has its own transport stream, which carries the file's bytes
// from the range's offset and nothing else (XEP-0234 §3). The receiver
// knows where the file ends from the offered size: it reads exactly that
// many bytes and never waits for the end of the stream (a transport such
// as net.Pipe has no half-close). Bytes beyond the size, read while the
// receiver waits for the checksum, fail the file. Only an offer without a
// size is read to the end of the stream, up to Limits.MaxFileSize.
//
// # Resuming
//
// When a transfer breaks, the receiver keeps NAME.part and a record of the
// offer (the sender's bare JID, the name, size, date and hashes, and the
// identity of the .part) in [StateDirName], a 0700 directory inside Dir
// that no offered name can reach, under a random name. A NAME.part without
// such a record — one a peer sent as a file, say — is never resumed. When the same peer offers the same file again
// (with <range/> in the offer, which announces range support), the
// receiver answers the session-accept with <range offset='N'/>, N being
// the length of the .part; the sender sends from N. Both sides hash the
// whole file: the sender reads (but does not send) the first N bytes of its
// source, the receiver reads them back from the .part before appending.
// The checksum thus covers the whole file, and also carries a <range/>
// with the hashes of the part sent. Fetch resumes the same way, putting
// the range in its request.
//
// Encrypted transfers (a content with a security layer, such as XEP-0391
// JET) are not resumed: they restart from the first byte. Their data is
// one AES-GCM stream authenticated only by the tag at its end, so the
// plaintext of an unfinished one is never trusted: no .part of it is kept
// for a resume, and a stream cannot start in the middle. A receiver
// offered an encrypted file whose name has a .part of the same file (a
// plaintext transfer that broke, or an encrypted one a crash left) empties
// that .part and reuses it under its name, answers with no offset, logs it
// at info and sets Result.Note to NoteEncryptedRestart. A sender whose
// encrypted offer is accepted with a range past byte 0 refuses the file
// (ErrSecurity wrapping ErrEncryptedResume).
//
// # Hash encodings
//
// Hash values are sent as XEP-0300 says, base64 of the digest (Libervia
// 0.9 wants base64 of the hex digest instead: set Sender.HashEncoding to
// HexBase64 for it). On input base64, hex (urn:xmpp:hashes:1 peers) and
// base64-of-hex are all accepted; they cannot be mistaken for one another.
//
// # Older peers
//
// Offers in urn:xmpp:jingle:apps:file-transfer:4 and :3 (whose <file/> is
// wrapped in <offer/> or <request/>) are accepted and answered in their
// own namespace, with urn:xmpp:hashes:1 hashes understood.
package filetransfer
