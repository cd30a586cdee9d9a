// Package jet is XEP-0391 Jingle Encrypted Transports for stream
// transports: a content's stream is encrypted while it is written and
// decrypted while it is read with AES-128-GCM (the 16-byte tag after the
// last byte, XEP-0396 style), under a key and IV that an Envelope (the
// OMEMO one of package omemo, say) carries to the peer in the content's
// <security/>. Method is the jingle.SecurityMethod to register.
//
// Resuming: an encrypted transfer is not resumed by range; it restarts
// from the first byte. The stream is authenticated only by the GCM tag at
// its end, so the plaintext received before a break was never
// authenticated and is not kept, and a stream cannot start in the middle
// of the GCM counter. Package filetransfer keeps no .part of an encrypted
// transfer, says so in Result.Note (filetransfer.NoteEncryptedRestart) when
// a .part of the same file is restarted, and refuses a receiver's range
// past byte 0 (filetransfer.ErrEncryptedResume).
package jet
