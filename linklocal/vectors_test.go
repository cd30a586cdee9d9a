package linklocal

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// The XEP-0174 examples: 12 files, 4 stream headers, 2 stream features, 2
// messages and 4 closing tags. A vector that goes missing fails the test.
const (
	vectorFiles0174    = 12
	vectorHeaders0174  = 4
	vectorFeatures0174 = 2
)

const streamOpen = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

// stripMarker removes the "I: " / "R: " direction marker of an example
// (MANIFEST note), keeping the XML.
func stripMarker(b []byte) (dir string, rest []byte) {
	s := string(b)
	for _, m := range []string{"I:", "R:"} {
		if strings.HasPrefix(s, m) {
			return m[:1], []byte(strings.TrimLeft(s[len(m):], " "))
		}
	}
	return "", b
}

func TestVectors(t *testing.T) {
	vs := xmltest.Vectors(t, "xep-0174")
	if len(vs) < vectorFiles0174 {
		t.Fatalf("%d XEP-0174 vectors, want %d", len(vs), vectorFiles0174)
	}
	var headers, feats, messages, closes int
	for _, v := range vs {
		t.Run(v.Name(), func(t *testing.T) {
			dir, data := stripMarker(v.Data)
			text := strings.TrimSpace(string(data))
			switch {
			case v.WellFormed:
				// Messages: parse with the stanza model, write back,
				// compare infosets.
				ss, err := stanzamodel.NewDefault().Parse(bytes.NewReader(v.Data))
				if err != nil {
					t.Fatal(err)
				}
				var out []byte
				for _, s := range ss {
					b, err := stanzamodel.Marshal(s)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, b...)
				}
				if xmltest.AssertEqual(t, out, v.Data) {
					messages++
				}
			case strings.Contains(text, "<stream:stream"):
				h, err := readHeader(xml.NewDecoder(strings.NewReader(text)))
				if err != nil {
					t.Fatal(err)
				}
				from, to := "romeo@forza", "juliet@pronto"
				if dir == "R" {
					from, to = to, from
				}
				if h.From.String() != from || h.To.String() != to || !h.v1() {
					t.Fatalf("header from %s to %s version %q", h.From, h.To, h.Version)
				}
				// What this package writes for the same addresses has the
				// same infoset.
				var b bytes.Buffer
				if err := writeHeader(&b, jid.MustParse(from), jid.MustParse(to), true, ""); err != nil {
					t.Fatal(err)
				}
				if xmltest.AssertEqual(t, append(b.Bytes(), "</stream:stream>"...), []byte(text+"</stream:stream>")) {
					headers++
				}
			case strings.HasPrefix(text, "<stream:features>"):
				d := xml.NewDecoder(strings.NewReader(streamOpen + text))
				if _, err := readHeader(d); err != nil {
					t.Fatal(err)
				}
				f, err := readFeatures(d)
				if err != nil {
					t.Fatal(err)
				}
				if f.StartTLS == nil || f.StartTLS.Required == nil {
					t.Fatalf("starttls/required not seen: %+v", f)
				}
				if v.Name() == "ex10" {
					checkFeatureDisco(t, f, streamOpen+text)
				}
				feats++
			case text == "</stream:stream>":
				closes++
			default:
				t.Fatalf("unexpected vector %q", text)
			}
		})
	}
	if headers != vectorHeaders0174 || feats != vectorFeatures0174 || messages != 2 || closes != 4 {
		t.Errorf("checked %d headers, %d features, %d messages, %d closes", headers, feats, messages, closes)
	}
}

// checkFeatureDisco checks the disco#info of the stream features example:
// decoded into xmppclient.Info and written back, it has the same infoset
// as the example's <query/>.
func checkFeatureDisco(t *testing.T, f features, doc string) {
	t.Helper()
	if f.Disco == nil {
		t.Fatal("no disco#info in the stream features")
	}
	info := f.Disco.info()
	if info.Node != "http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0=" || len(info.Identities) != 1 || len(info.Features) != 4 || !info.HasFeature(xmppclient.NSCaps) {
		t.Fatalf("disco#info %+v", info)
	}
	want, err := xmltest.FindAll([]byte(doc+"</stream:stream>"), xml.Name{Space: xmppclient.NSDiscoInfo, Local: "query"})
	if err != nil || len(want) != 1 {
		t.Fatalf("query in the example: %d, %v", len(want), err)
	}
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	if err := copyTokens(e, info.TokenReader()); err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, b.Bytes(), want[0])
}

func copyTokens(e *xml.Encoder, r xml.TokenReader) error {
	for {
		tok, err := r.Token()
		if tok != nil {
			if err := e.EncodeToken(tok); err != nil {
				return err
			}
		}
		if err != nil {
			if err.Error() == "EOF" {
				return e.Flush()
			}
			return err
		}
	}
}

// TestReadHeaderHostile: whatever comes first that is not a stream header
// gets the stream error RFC 6120 §4.9.3 names, and never a panic.
func TestReadHeaderHostile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     error
		cond     stream.Error
	}{
		{"iq first", `<iq type='get' id='1' xmlns='jabber:client'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, ErrNotStream, stream.InvalidNamespace},
		{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrNotStream, stream.NotWellFormed},
		{"binary", "\x00\x01\x02\xff", ErrNotStream, stream.NotWellFormed},
		{"comment", `<!-- hi --><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, ErrNotStream, stream.RestrictedXML},
		{"doctype", `<!DOCTYPE x><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, ErrNotStream, stream.RestrictedXML},
		{"pi", `<?xml version='1.0'?><?evil?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, ErrNotStream, stream.RestrictedXML},
		{"server ns", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>`, ErrNotStream, stream.InvalidNamespace},
		{"wrong stream ns", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:evil'>`, ErrNotStream, stream.InvalidNamespace},
		{"version 2", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>`, ErrNotStream, stream.UnsupportedVersion},
		{"bad from", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='@@'>`, ErrInvalidFrom, stream.InvalidFrom},
		{"end first", `</stream:stream>`, ErrNotStream, stream.NotWellFormed},
		{"stream error", `<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, ErrRefused, stream.HostUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readHeader(xml.NewDecoder(strings.NewReader(tc.in)))
			if !errors.Is(err, tc.kind) || !errors.Is(err, tc.cond) {
				t.Fatalf("error %v, want %v and %v", err, tc.kind, tc.cond)
			}
		})
	}
	// Pre-1.0 peers (libpurple sends no version) are fine and get no
	// features.
	h, err := readHeader(xml.NewDecoder(strings.NewReader(`<?xml version='1.0' encoding='UTF-8' ?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" from="a@b" to="c@d">`)))
	if err != nil || h.v1() || h.From.String() != "a@b" {
		t.Fatalf("pre-1.0 header: %+v, %v", h, err)
	}
}

func TestReadFeaturesHostile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     error
	}{
		{"iq instead", `<iq type='get' id='1'/>`, ErrNotStream},
		{"text", `hello`, ErrNotStream},
		{"stream error", `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, ErrRefused},
		{"malformed disco", `<stream:features><query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'></query></stream:features>`, ErrNotStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := xml.NewDecoder(strings.NewReader(streamOpen + tc.in))
			if _, err := readHeader(d); err != nil {
				t.Fatal(err)
			}
			_, err := readFeatures(d)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
		})
	}
}
