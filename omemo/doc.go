// Package omemo is OMEMO 0.3 (XEP-0384 version 0.3, namespace
// eu.siacs.conversations.axolotl, as Conversations, Dino and Libervia 0.9
// speak it) for carrying keys: a Manager holds one device of an account
// (its keys, its sessions with peers' devices and their trust, in a state
// file of mode 0600), publishes its device list and bundle over PEP, and
// encrypts and decrypts key material with X3DH and the double ratchet of
// go.mau.fi/libsignal. Envelope is XEP-0396's envelope for package jet.
//
// The state survives a restart: the same device id and identity key, and
// the sessions, so a peer with a session costs no new key exchange (no
// bundle fetch, no pre-key message). libsignal wraps keys in pre-key
// messages until the peer's first answer on the session is decrypted; a
// Manager whose stream can send stanzas (StanzaSender) answers each
// pre-key message it decrypts with an empty key-transport message
// (Acknowledge), as Conversations and Dino do, and ReceiveKeyTransport
// takes such answers. Stats counts the key-exchange steps.
package omemo
