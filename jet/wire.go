package jet

import (
	"encoding/xml"
	"fmt"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces and identifiers of XEP-0391 and XEP-0396.
const (
	// NS is XEP-0391's namespace: the <security/> element and the disco
	// feature.
	NS = "urn:xmpp:jingle:jet:0"
	// NSOMEMO is XEP-0396's disco feature (JET with an OMEMO envelope).
	NSOMEMO = "urn:xmpp:jingle:jet-omemo:0"
	// CipherAES128GCM is the only cipher defined for JET-OMEMO: AES-128-GCM,
	// the 16-byte tag after the ciphertext. Libervia 0.9, Dino and the
	// XEP's examples all write it without a version suffix.
	CipherAES128GCM = "urn:xmpp:ciphers:aes-128-gcm-nopadding"
)

// knownCipher reports whether c names AES-128-GCM; the ":0"-suffixed form
// some drafts used is accepted too.
func knownCipher(c string) bool {
	return c == CipherAES128GCM || c == CipherAES128GCM+":0"
}

// Security is the <security xmlns='urn:xmpp:jingle:jet:0'/> child of a
// Jingle <content/>: which cipher protects the content's stream, and the
// envelope (of type Type, e.g. an OMEMO <encrypted/>) carrying its key.
type Security struct {
	XMLName xml.Name `xml:"urn:xmpp:jingle:jet:0 security"`
	// Name is the content's name.
	Name   string `xml:"name,attr"`
	Cipher string `xml:"cipher,attr"`
	// Type is the envelope's namespace.
	Type     string          `xml:"type,attr"`
	Envelope *jingle.Element `xml:",any"`
}

// Element returns s as a jingle.Element, for a jingle.Offer.
func (s Security) Element() (jingle.Element, error) {
	return jingle.NewElement(s)
}

// ParseSecurity decodes a <security/> element and checks what a receiver
// needs: a known cipher and an envelope.
func ParseSecurity(el jingle.Element) (Security, error) {
	var s Security
	if el.Namespace() != NS || el.XMLName.Local != "security" {
		return s, fmt.Errorf("jet: <%s xmlns='%s'> is not a JET <security/>", el.XMLName.Local, el.Namespace())
	}
	if err := el.Decode(&s); err != nil {
		return s, fmt.Errorf("jet: %w", err)
	}
	if !knownCipher(s.Cipher) {
		return s, fmt.Errorf("jet: unsupported cipher %q", s.Cipher)
	}
	if s.Envelope == nil || s.Envelope.IsZero() {
		return s, fmt.Errorf("jet: <security/> of content %q carries no envelope", s.Name)
	}
	return s, nil
}
