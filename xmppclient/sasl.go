package xmppclient

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
)

const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// Names of the SASL mechanisms Dial supports, in its default order of
// preference.
const (
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA1   = "SCRAM-SHA-1"
	MechanismPlain       = "PLAIN"
)

// defaultMechanisms is the default SASL preference order of Dial.
func defaultMechanisms() []string {
	return []string{MechanismSCRAMSHA256, MechanismSCRAMSHA1, MechanismPlain}
}

func lookupMechanism(name string) (sasl.Mechanism, bool) {
	switch name {
	case MechanismSCRAMSHA256:
		return sasl.ScramSha256, true
	case MechanismSCRAMSHA1:
		return sasl.ScramSha1, true
	case MechanismPlain:
		return sasl.Plain, true
	}
	return sasl.Mechanism{}, false
}

// saslFeature is the client side of SASL negotiation (RFC 6120 §6). It
// replaces mellium's xmpp.SASL to report failures as *SASLError (mellium's
// error type is internal and its message drops the condition when the server
// sends a text), to record the mechanism used, and to refuse any SASL
// exchange on a stream that is not protected by a completed TLS handshake.
//
// mechs are in order of preference; the first one the server also offers is
// used. *used receives its name.
func saslFeature(username, password string, mechs []sasl.Mechanism, used *string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsSASL, Local: "mechanisms"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			var offered struct {
				List []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanism"`
			}
			err := d.DecodeElement(&offered, start)
			return true, offered.List, err
		},
		Negotiate: func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
			offered, _ := data.([]string)
			tlsState := s.ConnectionState()
			if s.State()&xmpp.Secure == 0 || !tlsState.HandshakeComplete {
				return 0, nil, errors.New("xmppclient: refusing SASL on a stream without TLS")
			}
			var mech sasl.Mechanism
			for _, m := range mechs {
				if slices.Contains(offered, m.Name) {
					mech = m
					break
				}
			}
			if mech.Name == "" {
				return 0, nil, fmt.Errorf("%w: server offers %q", ErrNoMechanism, offered)
			}
			*used = mech.Name
			client := sasl.NewClient(mech,
				sasl.Credentials(func() ([]byte, []byte, []byte) {
					return []byte(username), []byte(password), nil
				}),
				sasl.RemoteMechanisms(offered...),
				sasl.TLSState(tlsState),
			)
			if err := runSASL(ctx, s, mech.Name, client); err != nil {
				return 0, nil, err
			}
			// Returning the connection makes mellium restart the stream.
			return xmpp.Authn, s.Conn(), nil
		},
	}
}

// saslFailure mirrors <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>.
type saslFailure struct {
	Conditions []struct {
		XMLName xml.Name
	} `xml:",any"`
	Text string `xml:"urn:ietf:params:xml:ns:xmpp-sasl text"`
}

func runSASL(ctx context.Context, s *xmpp.Session, mechName string, client *sasl.Negotiator) error {
	w := s.TokenWriter()
	defer w.Close()
	r := s.TokenReader()
	defer r.Close()
	d := xml.NewTokenDecoder(r)

	send := func(local string, payload []byte, attrs ...xml.Attr) error {
		// RFC 6120 §6.4.2: an empty initial response is sent as "=".
		text := "="
		if len(payload) > 0 {
			text = base64.StdEncoding.EncodeToString(payload)
		} else if local == "response" {
			text = ""
		}
		start := xml.StartElement{Name: xml.Name{Space: nsSASL, Local: local}, Attr: attrs}
		var inner xml.TokenReader
		if text != "" {
			inner = xmlstream.Token(xml.CharData(text))
		}
		if _, err := xmlstream.Copy(w, xmlstream.Wrap(inner, start)); err != nil {
			return err
		}
		return w.Flush()
	}

	more, resp, err := client.Step(nil)
	if err != nil {
		return fmt.Errorf("xmppclient: SASL %s: %w", mechName, err)
	}
	if err := send("auth", resp, xml.Attr{Name: xml.Name{Local: "mechanism"}, Value: mechName}); err != nil {
		return fmt.Errorf("xmppclient: SASL %s: sending auth: %w", mechName, err)
	}

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("xmppclient: SASL %s: %w", mechName, err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue // whitespace keepalive
		}
		if start.Name.Space != nsSASL {
			return fmt.Errorf("xmppclient: SASL %s: unexpected element %s", mechName, start.Name.Local)
		}
		switch start.Name.Local {
		case "failure":
			var f saslFailure
			if err := d.DecodeElement(&f, &start); err != nil {
				return fmt.Errorf("xmppclient: SASL %s: decoding failure: %w", mechName, err)
			}
			serr := &SASLError{Mechanism: mechName, Text: f.Text}
			for _, c := range f.Conditions {
				if c.XMLName.Space == nsSASL && c.XMLName.Local != "text" {
					serr.Condition = c.XMLName.Local
					break
				}
			}
			return serr
		case "challenge", "success":
			var payload string
			if err := d.DecodeElement(&payload, &start); err != nil {
				return fmt.Errorf("xmppclient: SASL %s: decoding %s: %w", mechName, start.Name.Local, err)
			}
			data, err := decodeSASLPayload(payload)
			if err != nil {
				return fmt.Errorf("xmppclient: SASL %s: %s: %w", mechName, start.Name.Local, err)
			}
			if start.Name.Local == "success" {
				// Additional data with success (eg. the SCRAM server
				// signature) must be checked before trusting the server.
				if more {
					more, _, err = client.Step(data)
					if err != nil {
						return fmt.Errorf("xmppclient: SASL %s: verifying server: %w", mechName, err)
					}
				}
				if more {
					return fmt.Errorf("xmppclient: SASL %s: server reported success before the exchange was complete", mechName)
				}
				return nil
			}
			if !more {
				// RFC 6120 §6.3.10: additional data in a challenge after the
				// exchange is complete; answer with an empty response.
				if err := send("response", nil); err != nil {
					return fmt.Errorf("xmppclient: SASL %s: %w", mechName, err)
				}
				continue
			}
			more, resp, err = client.Step(data)
			if err != nil {
				return fmt.Errorf("xmppclient: SASL %s: %w", mechName, err)
			}
			if err := send("response", resp); err != nil {
				return fmt.Errorf("xmppclient: SASL %s: sending response: %w", mechName, err)
			}
		default:
			return fmt.Errorf("xmppclient: SASL %s: unexpected element %s", mechName, start.Name.Local)
		}
	}
}

// decodeSASLPayload decodes base64 SASL data; "=" and "" are empty.
func decodeSASLPayload(s string) ([]byte, error) {
	if s == "" || s == "=" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}
