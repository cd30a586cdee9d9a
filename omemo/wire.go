package omemo

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Namespaces of OMEMO 0.3 (XEP-0384 version 0.3, "axolotl" as
// Conversations named it).
const (
	NS = "eu.siacs.conversations.axolotl"
	// NodeDeviceList is the PEP node of an account's device list.
	NodeDeviceList = NS + ".devicelist"
	// NodeBundlesPrefix prefixes the PEP node of each device's bundle,
	// followed by the device id.
	NodeBundlesPrefix = NS + ".bundles:"
)

// DeviceList is the <list/> published on NodeDeviceList.
type DeviceList struct {
	XMLName xml.Name `xml:"eu.siacs.conversations.axolotl list"`
	Devices []Device `xml:"device"`
}

// Device is one <device/> of a DeviceList.
type Device struct {
	ID uint32 `xml:"id,attr"`
	// Label is OMEMO 0.8's optional label; 0.3 peers ignore it.
	Label string `xml:"label,attr,omitempty"`
}

// IDs returns the device ids of the list.
func (l DeviceList) IDs() []uint32 {
	out := make([]uint32, 0, len(l.Devices))
	for _, d := range l.Devices {
		if d.ID != 0 {
			out = append(out, d.ID)
		}
	}
	return out
}

// Bundle is the <bundle/> a device publishes: its public keys, each
// serialized with the 0x05 type byte (33 bytes), base64-encoded.
type Bundle struct {
	XMLName               xml.Name    `xml:"eu.siacs.conversations.axolotl bundle"`
	SignedPreKeyPublic    keyWithID   `xml:"signedPreKeyPublic"`
	SignedPreKeySignature b64         `xml:"signedPreKeySignature"`
	IdentityKey           b64         `xml:"identityKey"`
	PreKeys               []keyWithID `xml:"prekeys>preKeyPublic"`
}

type keyWithID struct {
	SignedID uint32 `xml:"signedPreKeyId,attr,omitempty"`
	PreKeyID uint32 `xml:"preKeyId,attr,omitempty"`
	Key      b64    `xml:",chardata"`
}

// Encrypted is the OMEMO 0.3 <encrypted/> element: a header with the
// sender's device id, one <key/> per recipient device and the IV, and an
// optional payload (absent in a key-transport element).
type Encrypted struct {
	XMLName xml.Name `xml:"eu.siacs.conversations.axolotl encrypted"`
	Header  Header   `xml:"header"`
	// Payload is nil when absent (a key-transport element).
	Payload *Payload `xml:"payload"`
}

// Payload is the ciphertext of an Encrypted's <payload/>. An empty one is
// written as one space (see PayloadEmpty).
type Payload []byte

// MarshalText implements encoding.TextMarshaler.
func (p Payload) MarshalText() ([]byte, error) {
	if len(p) == 0 {
		return []byte(" "), nil
	}
	return b64(p).MarshalText()
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Payload) UnmarshalText(t []byte) error { return (*b64)(p).UnmarshalText(t) }

// Header is the <header/> of an Encrypted.
type Header struct {
	SID  uint32 `xml:"sid,attr"`
	Keys []Key  `xml:"key"`
	IV   b64    `xml:"iv"`
}

// Key is one recipient device's encrypted key material: a serialized
// Signal message, a PreKeySignalMessage when PreKey is set.
type Key struct {
	RID    uint32 `xml:"rid,attr"`
	PreKey bool   `xml:"prekey,attr,omitempty"`
	Value  b64    `xml:",chardata"`
}

// UnmarshalXML accepts prekey='1' as well as 'true'.
func (k *Key) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var raw struct {
		RID    string `xml:"rid,attr"`
		PreKey string `xml:"prekey,attr"`
		Value  b64    `xml:",chardata"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return err
	}
	rid, err := strconv.ParseUint(strings.TrimSpace(raw.RID), 10, 32)
	if err != nil {
		return fmt.Errorf("omemo: <key rid=%q>: %w", raw.RID, err)
	}
	k.RID, k.Value = uint32(rid), raw.Value
	k.PreKey = raw.PreKey == "true" || raw.PreKey == "1"
	return nil
}

// b64 is binary data written as base64 in XML text. Whitespace in the
// input is ignored.
type b64 []byte

// MarshalText implements encoding.TextMarshaler.
func (b b64) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString(b)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *b64) UnmarshalText(t []byte) error {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, string(t))
	v, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		v, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return fmt.Errorf("omemo: bad base64: %w", err)
	}
	*b = v
	return nil
}
