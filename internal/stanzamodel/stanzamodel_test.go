package stanzamodel_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
)

// knownLoss returns, for a vector whose round trip through the models
// loses something, the start of the expected difference. Each is a defect
// of a vector or of a model; see the comment.
func knownLoss(file string) (string, bool) {
	switch file {
	case "xep-0293/ex05.xml":
		// Typo in the XEP: <jingle xmlns='urn:xmpp:jingle:1'> is closed
		// before its attributes, which become its character data.
		// jingle.Jingle has no place for character data, so the text is
		// dropped.
		return "/iq/jingle: text ", true
	}
	return "", false
}

// TestVectorsRoundTrip parses every example of every XEP with the default
// registry: a well-formed one must come back with the same infoset from
// Marshal and from MarshalIndent and give valid JSON; any other must be
// rejected with a position.
func TestVectorsRoundTrip(t *testing.T) {
	r := stanzamodel.NewDefault()
	var good, bad, jingles, errs int
	for _, v := range xmltest.AllVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			ss, err := r.Parse(bytes.NewReader(v.Data))
			if !v.WellFormed {
				var serr *stanzamodel.SyntaxError
				if !errors.As(err, &serr) || serr.Line < 1 {
					t.Fatalf("not well-formed (%s), but Parse error = %v", v.Note, err)
				}
				bad++
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			good++
			var compact, indented []byte
			for _, s := range ss {
				for _, p := range s.Payload {
					switch p.Kind {
					case stanzamodel.KindJingle:
						jingles++
					case stanzamodel.KindError:
						errs++
					}
				}
				b, err := stanzamodel.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				compact = append(append(compact, b...), '\n')
				if b, err = stanzamodel.MarshalIndent(s, "", "  "); err != nil {
					t.Fatal(err)
				}
				indented = append(append(indented, b...), '\n')
				j, err := json.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				var back struct {
					Stanza  string            `json:"stanza"`
					NS      string            `json:"ns"`
					Attrs   map[string]string `json:"attrs"`
					Payload []json.RawMessage `json:"payload"`
				}
				if err := json.Unmarshal(j, &back); err != nil {
					t.Fatalf("JSON %s: %v", j, err)
				}
				if back.Stanza != s.Name.Local || back.NS != s.Name.Space || len(back.Attrs) != len(s.Attr) || len(back.Payload) != len(s.Payload) {
					t.Errorf("JSON %s does not describe %s", j, s)
				}
			}
			for _, out := range [][]byte{compact, indented} {
				ok, diff := xmltest.Equal(v.Data, out)
				if want, known := knownLoss(v.File); known {
					if ok || !strings.HasPrefix(diff, want) {
						t.Errorf("known loss %q, got ok=%v diff %q", want, ok, diff)
					}
					continue
				}
				if !ok {
					t.Errorf("round trip: %s\n%s", diff, out)
				}
			}
		})
	}
	// All of them, as the manifest of 2026-06-30 has them.
	if good < 221 || bad < 25 {
		t.Errorf("checked %d well-formed and %d malformed vectors, want at least 221 and 25", good, bad)
	}
	if jingles < 82 || errs < 13 {
		t.Errorf("decoded %d <jingle/> and %d <error/> models; the vectors have more", jingles, errs)
	}
	t.Logf("%d well-formed vectors round-tripped (%d jingle, %d error models), %d malformed rejected", good, jingles, errs, bad)
}

const sample = `<?xml version='1.0'?>
<!-- a comment before -->
<iq from='romeo@montague.lit/orchard' id='i1' to='juliet@capulet.lit/balcony' type='error' xml:lang='en'>
  <jingle xmlns='urn:xmpp:jingle:1' action='no-such-action' sid='s1'>
    <content creator='initiator' name='voice'>
      <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>
    </content>
  </jingle>
  <query xmlns='http://jabber.org/protocol/disco#info'><!-- dropped --><feature var='f'/></query>
  <error type='cancel' by='x@y'>
    <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <unknown-session xmlns='urn:xmpp:jingle:errors:1'/>
  </error>
</iq>
<message xmlns:a='urn:a' a:b='c' to='t'> hello <body>hi &amp; bye</body><x xmlns=''><y/></x>!</message>`

func TestParse(t *testing.T) {
	ss, err := stanzamodel.NewDefault().Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("%d stanzas, want 2", len(ss))
	}
	iq, msg := ss[0], ss[1]
	if iq.Name != (xml.Name{Space: "jabber:client", Local: "iq"}) || iq.Line != 3 || iq.Column != 1 {
		t.Errorf("iq: %v at %d:%d", iq.Name, iq.Line, iq.Column)
	}
	var names []string
	for _, a := range iq.Attr {
		names = append(names, a.Name.Local)
	}
	if got := strings.Join(names, " "); got != "from id to type lang" {
		t.Errorf("iq attributes %q, want them in document order", got)
	}
	if v, _ := iq.AttrValue("type"); v != "error" {
		t.Errorf("type = %q", v)
	}
	if len(iq.Payload) != 3 {
		t.Fatalf("%d payloads, want 3: %+v", len(iq.Payload), iq.Payload)
	}

	j, ok := iq.Payload[0].Model.(*jingle.Jingle)
	if iq.Payload[0].Kind != "jingle" || !ok {
		t.Fatalf("payload 0: %s %T, want jingle *jingle.Jingle", iq.Payload[0].Kind, iq.Payload[0].Model)
	}
	// Decoding accepts what validation would reject.
	if j.Action != "no-such-action" || j.Action.Valid() || j.SID != "s1" || len(j.Contents) != 1 || j.Contents[0].Description.Namespace() != "urn:xmpp:jingle:apps:rtp:1" {
		t.Errorf("jingle = %+v", j)
	}

	q := iq.Payload[1]
	if q.Kind != stanzamodel.KindElement || q.Model != nil || q.Element.XMLName.Local != "query" || q.Name != q.Element.XMLName {
		t.Errorf("payload 1 = %+v, want the query as an element", q)
	}

	e, ok := iq.Payload[2].Model.(*jingle.Error)
	if iq.Payload[2].Kind != "error" || !ok {
		t.Fatalf("payload 2: %s %T, want error *jingle.Error", iq.Payload[2].Kind, iq.Payload[2].Model)
	}
	if e.Condition != "item-not-found" || e.Jingle != jingle.ErrUnknownSession || e.By != "x@y" || e.Type != "cancel" {
		t.Errorf("error = %+v", e)
	}
	if got := iq.Payloads("error"); len(got) != 1 || got[0].Model != e {
		t.Errorf("Payloads(error) = %v", got)
	}

	// Text directly in a stanza is kept, white space between children is not.
	var kinds []string
	for _, p := range msg.Payload {
		kinds = append(kinds, p.Kind)
	}
	if got := strings.Join(kinds, " "); got != "text element element text" {
		t.Errorf("message payload kinds %q", got)
	}
	if msg.Payload[0].Text != " hello " || msg.Payload[3].Text != "!" {
		t.Errorf("texts %q, %q", msg.Payload[0].Text, msg.Payload[3].Text)
	}
	if msg.Payload[2].Name != (xml.Name{Local: "x"}) {
		t.Errorf("xmlns='' child is %v, want no namespace", msg.Payload[2].Name)
	}

	var out []byte
	for _, s := range ss {
		b, err := stanzamodel.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	xmltest.AssertEqual(t, out, []byte(sample))
}

func TestMarshal(t *testing.T) {
	ss, err := stanzamodel.NewDefault().Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	const wantIQ = `<iq xmlns="jabber:client" from="romeo@montague.lit/orchard" id="i1" to="juliet@capulet.lit/balcony" type="error" xml:lang="en">
  <jingle xmlns="urn:xmpp:jingle:1" action="no-such-action" sid="s1">
    <content creator="initiator" name="voice">
      <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"/>
    </content>
  </jingle>
  <query xmlns="http://jabber.org/protocol/disco#info">
    <feature var="f"/>
  </query>
  <error type="cancel" by="x@y">
    <item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
    <unknown-session xmlns="urn:xmpp:jingle:errors:1"/>
  </error>
</iq>`
	got, err := stanzamodel.MarshalIndent(ss[0], "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != wantIQ {
		t.Errorf("MarshalIndent:\n%s\nwant:\n%s", got, wantIQ)
	}
	// Mixed content stays on one line, text as it was.
	const wantMsg = `<message xmlns="jabber:client" xmlns:ns1="urn:a" ns1:b="c" to="t"> hello <body>hi &amp; bye</body><x xmlns=""><y/></x>!</message>`
	for _, f := range []func() ([]byte, error){
		func() ([]byte, error) { return stanzamodel.Marshal(ss[1]) },
		func() ([]byte, error) { return stanzamodel.MarshalIndent(ss[1], "", "\t") },
	} {
		got, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != wantMsg {
			t.Errorf("message:\n%s\nwant:\n%s", got, wantMsg)
		}
	}
	if got := ss[1].String(); got != wantMsg {
		t.Errorf("String() = %s", got)
	}

	// encoding/xml can embed a Stanza too.
	raw, err := xml.Marshal(ss[0])
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, raw, []byte(wantIQ))
}

func TestJSON(t *testing.T) {
	in := `<iq id='i1' type='set' to='t' xml:lang='en' xmlns:a='urn:a' a:x='1'><jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s1'/><ping xmlns='urn:xmpp:ping'/></iq><message>hi</message>`
	ss, err := stanzamodel.NewDefault().Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"stanza":"iq","ns":"jabber:client","attrs":{"id":"i1","type":"set","to":"t","xml:lang":"en","urn:a x":"1"},"payload":[` +
			`{"type":"jingle","name":"jingle","ns":"urn:xmpp:jingle:1","model":{"action":"session-info","sid":"s1"}},` +
			`{"type":"element","name":"ping","ns":"urn:xmpp:ping","element":{"name":"ping","ns":"urn:xmpp:ping"}}]}`,
		`{"stanza":"message","ns":"jabber:client","attrs":{},"payload":[{"type":"text","text":"hi"}]}`,
	}
	for i, s := range ss {
		got, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want[i] {
			t.Errorf("stanza %d:\ngot  %s\nwant %s", i, got, want[i])
		}
	}
	empty, err := json.Marshal(&stanzamodel.Stanza{Name: xml.Name{Local: "presence"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(empty) != `{"stanza":"presence","ns":"","attrs":{},"payload":[]}` {
		t.Errorf("empty stanza: %s", empty)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		line, col int
		msg       string
	}{
		{"mismatched tag", "<iq>\n  <a>\n  </b>\n</iq>", 3, 7, "element <a> closed by </b>"},
		{"unclosed", "<iq>\n<a>", 2, 0, "unexpected EOF"},
		{"unbound element prefix", "<iq>\n  <x:a/></iq>", 2, 3, `unbound namespace prefix "x" on <a>`},
		{"unbound attribute prefix", "<iq y:b='1'/>", 1, 1, `unbound namespace prefix "y" on attribute b of <iq>`},
		{"unbound prefix in a model", "<iq><jingle xmlns='urn:xmpp:jingle:1'>\n<content z:q=''/></jingle></iq>", 2, 1, `unbound namespace prefix "z"`},
		{"text outside", "<iq/>\nI: <iq/>", 2, 1, "character data outside elements"},
		{"declaration not first", "\n<?xml version='1.0'?><iq/>", 2, 1, "XML declaration not at the start"},
		{"DTD", "<!DOCTYPE iq><iq/>", 1, 1, "DTDs"},
		{"undefined entity", "<iq>&nbsp;</iq>", 1, 0, "invalid character entity &nbsp;"},
		{"stray end tag", "<iq/></iq>", 1, 0, "unexpected end element </iq>"},
		{"no element", "<!-- only a comment -->\n", 1, 0, "no element in input"},
		{"empty", "", 1, 0, "no element in input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stanzamodel.NewDefault().Parse(strings.NewReader(tc.in))
			var serr *stanzamodel.SyntaxError
			if !errors.As(err, &serr) {
				t.Fatalf("err = %v (%T), want a *SyntaxError", err, err)
			}
			if serr.Line != tc.line || (tc.col != 0 && serr.Column != tc.col) || !strings.Contains(serr.Msg, tc.msg) {
				t.Errorf("err = %v (line %d, column %d, %q), want line %d, column %d, %q", err, serr.Line, serr.Column, serr.Msg, tc.line, tc.col, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("message %q does not start with the line", err)
			}
		})
	}
}

func TestParserStream(t *testing.T) {
	p := stanzamodel.NewDefault().NewParser(strings.NewReader("<a/><!-- c --><b/>\n<c><d></c>"))
	for _, want := range []string{"a", "b"} {
		s, err := p.Next()
		if err != nil || s.Name.Local != want {
			t.Fatalf("Next = %v, %v; want <%s>", s, err, want)
		}
	}
	_, err := p.Next()
	var serr *stanzamodel.SyntaxError
	if !errors.As(err, &serr) || serr.Line != 2 {
		t.Fatalf("third Next: %v, want a syntax error on line 2", err)
	}
	if _, again := p.Next(); again != err {
		t.Errorf("Next after an error = %v, want the same error", again)
	}

	p = stanzamodel.NewRegistry().NewParser(strings.NewReader("<a/>"))
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); err != io.EOF {
		t.Errorf("Next at the end = %v, want io.EOF", err)
	}
}

type ibbOpen struct {
	XMLName   xml.Name `xml:"http://jabber.org/protocol/ibb open"`
	BlockSize int      `xml:"block-size,attr"`
	SID       string   `xml:"sid,attr"`
	Stanza    string   `xml:"stanza,attr,omitempty"`
}

func TestRegister(t *testing.T) {
	const in = `<iq type='set' id='i'>
  <open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s' stanza='iq'/>
  <jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s1'/>
</iq>`
	name := xml.Name{Space: "http://jabber.org/protocol/ibb", Local: "open"}

	empty := stanzamodel.NewRegistry()
	s := parseOne(t, empty, in)
	for _, p := range s.Payload {
		if p.Kind != stanzamodel.KindElement {
			t.Errorf("empty registry: %s payload %s", p.Kind, p.Name.Local)
		}
	}

	r := stanzamodel.NewDefault()
	r.Register(name, "ibb-open", stanzamodel.DecodeAs[ibbOpen]())
	if kind, dec, ok := r.Lookup(name); !ok || kind != "ibb-open" || dec == nil {
		t.Errorf("Lookup = %q, %v, %v", kind, dec != nil, ok)
	}
	s = parseOne(t, r, in)
	o, ok := s.Payload[0].Model.(*ibbOpen)
	if !ok || o.BlockSize != 4096 || o.SID != "s" || s.Payload[0].Kind != "ibb-open" {
		t.Fatalf("payload 0 = %+v", s.Payload[0])
	}
	if _, ok := s.Payload[1].Model.(*jingle.Jingle); !ok {
		t.Errorf("payload 1 = %+v, want the jingle model still", s.Payload[1])
	}
	out, err := stanzamodel.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, out, []byte(in))

	// A later registration replaces the earlier one.
	r.Register(name, "open2", stanzamodel.DecodeAs[ibbOpen]())
	if s := parseOne(t, r, in); s.Payload[0].Kind != "open2" {
		t.Errorf("kind after re-registering: %s", s.Payload[0].Kind)
	}

	// Registry.Decode serves elements the parser does not reach.
	desc := jingle.MustElement(ibbOpen{BlockSize: 1, SID: "x"})
	pl, err := r.Decode(desc)
	if err != nil || pl.Model.(*ibbOpen).SID != "x" {
		t.Errorf("Decode = %+v, %v", pl, err)
	}
	other := jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:x other"`
	}{})
	if pl, err := r.Decode(other); err != nil || pl.Kind != stanzamodel.KindElement || pl.Element.XMLName.Local != "other" {
		t.Errorf("Decode(unregistered) = %+v, %v", pl, err)
	}

	for _, kind := range []string{"", stanzamodel.KindElement, stanzamodel.KindText} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register with kind %q did not panic", kind)
				}
			}()
			r.Register(name, kind, stanzamodel.DecodeAs[ibbOpen]())
		}()
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Register with a nil DecodeFunc did not panic")
			}
		}()
		r.Register(name, "x", nil)
	}()
}

var errBroken = errors.New("broken on purpose")

func TestDecodeError(t *testing.T) {
	r := stanzamodel.NewDefault()
	r.Register(xml.Name{Space: "urn:x", Local: "x"}, "x", func(d *xml.Decoder, start xml.StartElement) (any, error) {
		return nil, errBroken
	})
	_, err := r.Parse(strings.NewReader("<iq>\n  <x xmlns='urn:x'/>\n</iq>"))
	var derr *stanzamodel.DecodeError
	if !errors.As(err, &derr) || !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want a *DecodeError wrapping errBroken", err)
	}
	if derr.Line != 2 || derr.Column != 3 || derr.Kind != "x" || derr.Name.Local != "x" {
		t.Errorf("DecodeError = %+v", derr)
	}
	if want := "line 2, column 3: decoding <x xmlns='urn:x'> as x: broken on purpose"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	// A structure the jingle model cannot hold: <jingle> in the wrong
	// namespace registered as a Jingle.
	r.Register(xml.Name{Space: "urn:y", Local: "jingle"}, "jingle", stanzamodel.DecodeAs[jingle.Jingle]())
	_, err = r.Parse(strings.NewReader("<iq><jingle xmlns='urn:y'/></iq>"))
	if !errors.As(err, &derr) || !strings.Contains(err.Error(), "decoding <jingle xmlns='urn:y'> as jingle") {
		t.Errorf("err = %v", err)
	}
}

func parseOne(t *testing.T, r *stanzamodel.Registry, in string) *stanzamodel.Stanza {
	t.Helper()
	ss, err := r.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("%d stanzas, want 1", len(ss))
	}
	return ss[0]
}

// TestNestedModels checks that registered elements inside a <jingle/> are
// decoded and shown under "nested" with their path, and that the XML is
// unchanged by it.
func TestNestedModels(t *testing.T) {
	type desc struct {
		XMLName xml.Name `xml:"urn:example:app description"`
		Media   string   `xml:"media,attr"`
	}
	r := stanzamodel.NewDefault()
	r.Register(xml.Name{Space: "urn:example:app", Local: "description"}, "example-app", stanzamodel.DecodeAs[desc]())
	in := `<iq xmlns='jabber:client' type='set' id='1'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'>` +
		`<content creator='initiator' name='c'><description xmlns='urn:example:app' media='audio'/>` +
		`<transport xmlns='urn:example:unregistered'/></content></jingle></iq>`
	ss, err := r.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	nested := ss[0].Payload[0].Nested
	if len(nested) != 1 || nested[0].Path != "contents[0].description" || nested[0].Kind != "example-app" {
		t.Fatalf("nested = %+v, want the description only", nested)
	}
	if d, ok := nested[0].Model.(*desc); !ok || d.Media != "audio" {
		t.Fatalf("nested model = %#v", nested[0].Model)
	}
	js, err := json.Marshal(ss[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"nested":[{"path":"contents[0].description","type":"example-app"`) {
		t.Fatalf("JSON lacks the nested model: %s", js)
	}
	out, err := stanzamodel.Marshal(ss[0])
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := xmltest.Equal([]byte(in), out); !ok {
		t.Fatal(diff)
	}
}
