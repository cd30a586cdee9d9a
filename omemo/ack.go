package omemo

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
)

// StanzaSender sends a stanza over the stream; *xmpp.Session implements
// it. When the stream given to Open implements it too, the Manager answers
// each pre-key message it decrypts with an empty key-transport message
// (see Acknowledge).
type StanzaSender interface {
	Send(ctx context.Context, r xml.TokenReader) error
}

// ErrNotKeyTransport is returned by ReceiveKeyTransport for an
// <encrypted/> with a payload: a chat message, which this package does
// not read.
var ErrNotKeyTransport = errors.New("omemo: not a key-transport element (it has a payload)")

// Acknowledge sends device dev of peer's account an empty key-transport
// message (an <encrypted/> without payload, in a chat message with a
// store hint) over the session that a pre-key message of that device just
// built. Decrypting it is the device's first answer on the session, so
// its libsignal stops wrapping its keys in pre-key messages: without it a
// sender that only sends files (JET) would send pre-key messages for ever.
// Conversations and Dino do the same after a pre-key message. Decrypt
// calls it by itself when the stream is a StanzaSender.
func (m *Manager) Acknowledge(ctx context.Context, peer jid.JID, dev uint32) error {
	s, ok := m.stream.(StanzaSender)
	if !ok {
		return errors.New("omemo: the stream cannot send messages")
	}
	km := make([]byte, 32) // a key and a tag, as OMEMO 0.3 carries for a message
	iv := make([]byte, 12)
	if _, err := rand.Read(km); err != nil {
		return err
	}
	if _, err := rand.Read(iv); err != nil {
		return err
	}
	k, err := m.encryptFor(ctx, peer, dev, km)
	if err != nil {
		return err
	}
	e := Encrypted{Header: Header{SID: m.DeviceID(), Keys: []Key{k}, IV: iv}}
	el, err := jingle.NewElement(e)
	if err != nil {
		return fmt.Errorf("omemo: encoding a key-transport element: %w", err)
	}
	// XEP-0334: store it, so that a peer offline for a moment still gets
	// it from its server.
	store := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:hints", Local: "store"}})
	msg := stanza.Message{To: peer, Type: stanza.ChatMessage}
	if err := s.Send(ctx, msg.Wrap(xmlstream.MultiReader(el.TokenReader(), store))); err != nil {
		return fmt.Errorf("omemo: sending a key-transport message to %s: %w", peer.String(), err)
	}
	m.count.acksSent.Add(1)
	m.log.Debug("omemo: pre-key message acknowledged", "peer", peer.String(), "device", dev)
	return nil
}

// ReceiveKeyTransport decrypts a key-transport element (an <encrypted/>
// without payload, as Acknowledge sends) received from peer in a message.
// It moves the session on: an acknowledgement ends this side's pre-key
// messages to that device. The key material is thrown away. An element
// with a payload returns ErrNotKeyTransport; one without a key for this
// device returns an error and changes nothing.
func (m *Manager) ReceiveKeyTransport(ctx context.Context, peer jid.JID, e Encrypted) error {
	if e.Payload != nil {
		return ErrNotKeyTransport
	}
	if _, err := m.Decrypt(ctx, peer, e); err != nil {
		return err
	}
	m.count.acksReceived.Add(1)
	return nil
}
