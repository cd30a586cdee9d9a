package xmltest_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
)

const base = `<iq from='a@b/c' id='x1' type='set'>
  <!-- a comment -->
  <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s1'>
    <content creator='initiator' name='voice'>
      <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>
    </content>
    <content creator='initiator' name='video'/>
    <reason><success/><text xml:lang='en'>  bye  </text></reason>
  </jingle>
</iq>`

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    string
	}{
		{"identical", base},
		{"attribute order, quotes, prefixes and declarations", `<?xml version='1.0'?>
<c:iq xmlns:c="jabber:client" type="set" id="x1" from="a@b/c"><j:jingle xmlns:j="urn:xmpp:jingle:1" sid="s1" action="session-initiate" xmlns:unused="urn:x"><j:content name="voice" creator="initiator"><d:description xmlns:d="urn:xmpp:jingle:apps:rtp:1" media="audio"></d:description></j:content><j:content name="video" creator="initiator"/><j:reason><j:success/><j:text xml:lang="en">bye</j:text></j:reason></j:jingle></c:iq>`},
		{"explicit jabber:client", strings.Replace(base, "<iq ", "<iq xmlns='jabber:client' ", 1)},
		{"entities", strings.Replace(base, "sid='s1'", "sid='&#115;1'", 1)},
		{"CDATA text", strings.Replace(base, "  bye  ", "<![CDATA[bye]]>", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, diff := xmltest.Equal([]byte(base), []byte(tc.b))
			if !ok {
				t.Errorf("not equal: %s", diff)
			}
			if diff != "" {
				t.Errorf("diff = %q for equal documents", diff)
			}
		})
	}
}

func TestNotEqual(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    string
		diff string // the whole diff
	}{
		{
			name: "changed attribute",
			b:    strings.Replace(base, "name='video'", "name='audio'", 1),
			diff: `/iq/jingle/content[1]/@name: "video" vs "audio"`,
		},
		{
			name: "missing attribute",
			b:    strings.Replace(base, "<content creator='initiator' name='voice'>", "<content name='voice'>", 1),
			diff: `/iq/jingle/content[0]/@creator: "initiator" vs (absent)`,
		},
		{
			name: "extra attribute",
			b:    strings.Replace(base, "sid='s1'", "sid='s1' responder='r'", 1),
			diff: `/iq/jingle/@responder: (absent) vs "r"`,
		},
		{
			name: "attribute in a namespace is another attribute",
			b:    strings.Replace(base, "xml:lang='en'", "lang='en'", 1),
			diff: `/iq/jingle/reason/text/@lang: (absent) vs "en"`,
		},
		{
			name: "missing child",
			b:    strings.Replace(base, "<content creator='initiator' name='video'/>", "", 1),
			diff: `/iq/jingle/content[1]: element {urn:xmpp:jingle:1}content vs {urn:xmpp:jingle:1}reason`,
		},
		{
			name: "missing last child",
			b:    strings.Replace(base, "<reason><success/><text xml:lang='en'>  bye  </text></reason>", "", 1),
			diff: `/iq/jingle/reason: element {urn:xmpp:jingle:1}reason vs (absent): 3 child elements vs 2`,
		},
		{
			name: "extra child",
			b:    strings.Replace(base, "<success/>", "<success/><x xmlns='urn:y'/>", 1),
			diff: `/iq/jingle/reason/text: element {urn:xmpp:jingle:1}text vs {urn:y}x`,
		},
		{
			name: "changed namespace",
			b:    strings.Replace(base, "urn:xmpp:jingle:apps:rtp:1", "urn:xmpp:jingle:apps:rtp:2", 1),
			diff: `/iq/jingle/content[0]/description: element {urn:xmpp:jingle:apps:rtp:1}description vs {urn:xmpp:jingle:apps:rtp:2}description`,
		},
		{
			name: "top-level namespace",
			b:    strings.Replace(base, "<iq ", "<iq xmlns='jabber:server' ", 1),
			diff: `/iq: element {jabber:client}iq vs {jabber:server}iq`,
		},
		{
			name: "different child order",
			b: strings.Replace(base, `<content creator='initiator' name='video'/>
    <reason><success/><text xml:lang='en'>  bye  </text></reason>`, `<reason><success/><text xml:lang='en'>  bye  </text></reason>
    <content creator='initiator' name='video'/>`, 1),
			diff: `/iq/jingle/content[1]: element {urn:xmpp:jingle:1}content vs {urn:xmpp:jingle:1}reason`,
		},
		{
			name: "changed text",
			b:    strings.Replace(base, "  bye  ", "bye!", 1),
			diff: `/iq/jingle/reason/text: text "bye" vs "bye!"`,
		},
		{
			name: "text inside is not white space",
			b:    strings.Replace(base, "<success/>", "<success/>x", 1),
			diff: `/iq/jingle/reason: text "" vs "x"`,
		},
		{
			name: "extra top-level element",
			b:    base + "<presence/>",
			diff: `/presence: (absent) vs element {jabber:client}presence: 1 child elements vs 2`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, diff := xmltest.Equal([]byte(base), []byte(tc.b))
			if ok {
				t.Fatalf("Equal reported equal documents:\n%s", tc.b)
			}
			if diff != tc.diff {
				t.Errorf("diff:\ngot  %s\nwant %s", diff, tc.diff)
			}
		})
	}
}

func TestEqualMalformed(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"mismatched tag", "<a>\n<b></a>", "second input: line 2"},
		{"unbound prefix", "<a><x:b/></a>", `unbound namespace prefix "x"`},
		{"text outside", "<a/>hello", "character data outside elements"},
		{"empty", "<!-- nothing -->", "no element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, diff := xmltest.Equal([]byte("<a/>"), []byte(tc.in))
			if ok || !strings.Contains(diff, tc.want) {
				t.Errorf("Equal = %v, %q; want false and a diff containing %q", ok, diff, tc.want)
			}
		})
	}
}

func TestInfoset(t *testing.T) {
	doc, err := xmltest.Infoset(strings.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Children) != 1 {
		t.Fatalf("%d top-level elements, want 1", len(doc.Children))
	}
	iq := doc.Children[0]
	if iq.Name != (xml.Name{Space: "jabber:client", Local: "iq"}) || iq.Attr[xml.Name{Local: "id"}] != "x1" || len(iq.Attr) != 3 {
		t.Errorf("iq = %+v", iq)
	}
	j := iq.Children[0]
	if _, ok := j.Attr[xml.Name{Local: "xmlns"}]; ok || len(j.Attr) != 2 {
		t.Errorf("jingle attributes %v: want action and sid only", j.Attr)
	}
	text := j.Children[2].Children[1]
	if text.Text != "bye" || text.Attr[xml.Name{Space: "http://www.w3.org/XML/1998/namespace", Local: "lang"}] != "en" {
		t.Errorf("text = %+v", text)
	}
}

func TestElements(t *testing.T) {
	in := `<!-- first -->
<message from='a' to='b'><body>hi</body></message>
<!-- second -->
<p:presence xmlns:p='jabber:server' xmlns:x='urn:x'><x:c/></p:presence>
<iq xmlns='jabber:server' type='get'><q xmlns='urn:q'/></iq>`
	els, err := xmltest.Elements([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`<message xmlns="jabber:client" from='a' to='b'><body>hi</body></message>`,
		// The default namespace is in scope too, for unprefixed descendants.
		`<p:presence xmlns="jabber:client" xmlns:p='jabber:server' xmlns:x='urn:x'><x:c/></p:presence>`,
		`<iq xmlns='jabber:server' type='get'><q xmlns='urn:q'/></iq>`,
	}
	if len(els) != len(want) {
		t.Fatalf("%d elements, want %d: %q", len(els), len(want), els)
	}
	for i := range want {
		if string(els[i]) != want[i] {
			t.Errorf("element %d:\ngot  %s\nwant %s", i, els[i], want[i])
		}
	}
	// Each is standalone: its infoset is the one it had in the file.
	doc, err := xmltest.Infoset(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for i, el := range els {
		one, err := xmltest.Infoset(strings.NewReader(string(el)))
		if err != nil {
			t.Fatal(err)
		}
		if d := xmltest.Compare(&xmltest.Node{Children: doc.Children[i : i+1]}, one); d != "" {
			t.Errorf("element %d: %s", i, d)
		}
	}

	if _, err := xmltest.Elements([]byte("<a>\n<b>\n</a>")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("mismatched tag: err = %v, want an error on line 3", err)
	}
	if _, err := xmltest.Elements([]byte("I: <a/>")); err == nil {
		t.Error("text outside elements: no error")
	}
}

func TestFindAll(t *testing.T) {
	in := `<iq xmlns:j='urn:xmpp:jingle:1'><j:jingle sid='1'><j:jingle sid='inner'/></j:jingle></iq><iq><jingle xmlns='urn:xmpp:jingle:1' sid='2'/></iq>`
	got, err := xmltest.FindAll([]byte(in), xml.Name{Space: "urn:xmpp:jingle:1", Local: "jingle"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`<j:jingle xmlns:j="urn:xmpp:jingle:1" xmlns="jabber:client" sid='1'><j:jingle sid='inner'/></j:jingle>`,
		`<jingle xmlns='urn:xmpp:jingle:1' sid='2'/>`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("match %d:\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestVectors(t *testing.T) {
	vs := xmltest.Vectors(t, "xep-0166")
	if len(vs) < 32 {
		t.Errorf("%d vectors for xep-0166, want at least 32", len(vs))
	}
	short := xmltest.Vectors(t, "166")
	if len(short) != len(vs) {
		t.Errorf("Vectors(166) gave %d rows, Vectors(xep-0166) %d", len(short), len(vs))
	}
	var ex04 *xmltest.Vector
	for i, v := range vs {
		if v.XEP != "xep-0166" || len(v.Data) == 0 || v.Caption == "" {
			t.Errorf("row %d: %+v", i, v)
		}
		if v.File == "xep-0166/ex04.xml" {
			ex04 = &vs[i]
		}
	}
	if ex04 == nil {
		t.Fatal("xep-0166/ex04.xml missing")
	}
	if !ex04.WellFormed || ex04.TopElement != "iq" || ex04.Caption != "Initiator sends session-initiate" || ex04.Name() != "ex04" {
		t.Errorf("ex04 = %+v", ex04)
	}

	var notWF int
	for _, v := range xmltest.Vectors(t, "xep-0174") {
		if !v.WellFormed {
			notWF++
			if v.Note == "" {
				t.Errorf("%s: not well-formed and no note", v.File)
			}
		}
	}
	if notWF == 0 {
		t.Error("xep-0174: no row with well_formed=no")
	}
}

// TestManifestAgrees checks Infoset and Elements against the well_formed
// column, which Python's ElementTree computed: both parsers must agree on
// every vector, and splitting a vector must not change its infoset.
func TestManifestAgrees(t *testing.T) {
	vs := xmltest.AllVectors(t)
	var yes, no int
	for _, v := range vs {
		_, err := xmltest.Infoset(strings.NewReader(string(v.Data)))
		if v.WellFormed != (err == nil) {
			t.Errorf("%s: well_formed=%v but Infoset error = %v", v.File, v.WellFormed, err)
			continue
		}
		if !v.WellFormed {
			no++
			if _, err := xmltest.Elements(v.Data); err == nil {
				t.Errorf("%s: Elements accepted a vector that is not well-formed", v.File)
			}
			continue
		}
		yes++
		els, err := xmltest.Elements(v.Data)
		if err != nil {
			t.Errorf("%s: %v", v.File, err)
			continue
		}
		if len(els) == 0 {
			t.Errorf("%s: no elements", v.File)
		}
		joined := strings.Join(func() []string {
			var s []string
			for _, e := range els {
				s = append(s, string(e))
			}
			return s
		}(), "\n")
		if ok, diff := xmltest.Equal(v.Data, []byte(joined)); !ok {
			t.Errorf("%s: elements differ from the file: %s", v.File, diff)
		}
	}
	if yes < 221 || no < 25 {
		t.Errorf("checked %d well-formed and %d malformed vectors; the manifest has more", yes, no)
	}
	t.Logf("%d well-formed, %d malformed vectors", yes, no)
}
