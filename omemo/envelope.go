package omemo

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// NSJET is XEP-0396's disco feature: JET with an OMEMO envelope.
const NSJET = "urn:xmpp:jingle:jet-omemo:0"

// PayloadMode says what an envelope carries besides the key.
type PayloadMode int

// Payload modes.
const (
	// PayloadEmpty sends an empty <payload> (one space, no ciphertext):
	// no byte encrypted under the file's key, and the form Libervia 0.9
	// needs: its oldmemo 1.0 parser replaces the IV of a payload-less
	// message by a random one (ContentImpl.make_empty), so the file then
	// fails to decrypt. Conversations and Dino ignore the payload of a JET
	// envelope and read the key and the header's IV, so they accept it.
	PayloadEmpty PayloadMode = iota
	// PayloadNone sends the key-transport element XEP-0396 specifies (no
	// <payload/>), which Conversations (2.12) and Dino send and accept.
	PayloadNone
)

// Envelope is XEP-0396's OMEMO envelope for XEP-0391 JET (type
// eu.siacs.conversations.axolotl): the stream's 16-byte key is the OMEMO
// key material, and the 12-byte IV goes in the header. It implements
// jet.Envelope.
type Envelope struct {
	OMEMO   *Manager
	Payload PayloadMode
}

// Type implements jet.Envelope.
func (e *Envelope) Type() string { return NS }

// Features implements jingle.FeatureAdvertiser.
func (e *Envelope) Features() []string { return []string{NSJET} }

// Seal implements jet.Envelope. The key material is the bare 16-byte key,
// as Conversations and Dino require (Libervia reads its first 16 bytes).
func (e *Envelope) Seal(ctx context.Context, peer jid.JID, key, iv []byte) (jingle.Element, error) {
	enc, err := e.OMEMO.Encrypt(ctx, peer, key, iv)
	if err != nil {
		return jingle.Element{}, err
	}
	if e.Payload == PayloadEmpty {
		enc.Payload = &Payload{}
	}
	return jingle.NewElement(enc)
}

// Open implements jet.Envelope. Key material of 32 bytes is a key and the
// GCM tag of a payload (Libervia 0.9 encrypts a one-space payload with the
// file's key and IV); the tag is checked when there is a payload.
func (e *Envelope) Open(ctx context.Context, peer jid.JID, env jingle.Element) ([]byte, []byte, error) {
	if env.Namespace() != NS || env.XMLName.Local != "encrypted" {
		return nil, nil, fmt.Errorf("omemo: envelope <%s xmlns='%s'> is not an OMEMO 0.3 <encrypted/>", env.XMLName.Local, env.Namespace())
	}
	var enc Encrypted
	if err := env.Decode(&enc); err != nil {
		return nil, nil, err
	}
	if len(enc.Header.IV) != 12 {
		return nil, nil, fmt.Errorf("omemo: envelope IV of %d bytes, want 12", len(enc.Header.IV))
	}
	km, err := e.OMEMO.Decrypt(ctx, peer, enc)
	if err != nil {
		return nil, nil, err
	}
	if len(km) < 16 {
		return nil, nil, fmt.Errorf("omemo: key material of %d bytes", len(km))
	}
	key, tag := km[:16], km[16:]
	if enc.Payload != nil && len(*enc.Payload) > 0 {
		if err := checkPayload(key, enc.Header.IV, tag, *enc.Payload); err != nil {
			return nil, nil, err
		}
	}
	return key, enc.Header.IV, nil
}

// checkPayload authenticates a payload encrypted with the key and IV, the
// tag being in the key material (OMEMO 0.3).
func checkPayload(key, iv, tag, payload []byte) error {
	if len(tag) != 16 {
		return errors.New("omemo: a payload without its authentication tag")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	ct := append(append([]byte{}, payload...), tag...)
	if _, err := g.Open(nil, iv, ct, nil); err != nil {
		return fmt.Errorf("omemo: the envelope's payload fails authentication: %w", err)
	}
	return nil
}
