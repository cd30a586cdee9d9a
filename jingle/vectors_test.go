package jingle_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
)

// The XEP-0166 examples as the manifest of 2026-06-30 has them: 32 files,
// all well-formed, with 16 <jingle/> and 8 stanza <error/> elements. A
// vector that goes missing makes the tests below fail.
const (
	vectorMinFiles0166   = 32
	vectorMinJingles0166 = 16
	vectorMinErrors0166  = 8
)

var (
	vectorJingleName = xml.Name{Space: jingle.NS, Local: "jingle"}
	vectorErrorName  = xml.Name{Space: stanzamodel.NSClient, Local: "error"}
)

// TestVectorsRoundTrip parses each well-formed XEP-0166 example with the
// stanza model, checks that every <jingle/> became a jingle.Jingle and
// every stanza <error/> a jingle.Error, writes the stanzas back and
// compares the infoset with the file's.
func TestVectorsRoundTrip(t *testing.T) {
	vs := xmltest.Vectors(t, "xep-0166")
	var wellFormed, checked, jingles, errs int
	for _, v := range vs {
		if !v.WellFormed {
			continue
		}
		wellFormed++
		t.Run(v.Name(), func(t *testing.T) {
			wantJ, err := xmltest.FindAll(v.Data, vectorJingleName)
			if err != nil {
				t.Fatal(err)
			}
			wantE, err := xmltest.FindAll(v.Data, vectorErrorName)
			if err != nil {
				t.Fatal(err)
			}
			var gotJ, gotE int
			equal := xmltest.StanzasRoundTrip(t, stanzamodel.NewDefault(), v.Data, func(s *stanzamodel.Stanza) {
				for _, p := range s.Payload {
					switch p.Name {
					case vectorJingleName:
						if _, ok := p.Model.(*jingle.Jingle); !ok || p.Kind != stanzamodel.KindJingle {
							t.Errorf("<jingle/> payload: kind %q, model %T", p.Kind, p.Model)
						}
						gotJ++
					case vectorErrorName:
						if _, ok := p.Model.(*jingle.Error); !ok || p.Kind != stanzamodel.KindError {
							t.Errorf("<error/> payload: kind %q, model %T", p.Kind, p.Model)
						}
						gotE++
					}
				}
			})
			if gotJ != len(wantJ) || gotE != len(wantE) {
				t.Errorf("decoded %d jingle and %d error models; the file has %d and %d", gotJ, gotE, len(wantJ), len(wantE))
			}
			if equal {
				checked++
				jingles += gotJ
				errs += gotE
			}
		})
	}
	if checked < wellFormed || checked < vectorMinFiles0166 {
		t.Errorf("%d vectors round-tripped; the manifest has %d well-formed and at least %d are expected", checked, wellFormed, vectorMinFiles0166)
	}
	if jingles < vectorMinJingles0166 || errs < vectorMinErrors0166 {
		t.Errorf("%d jingle and %d error models checked, want at least %d and %d", jingles, errs, vectorMinJingles0166, vectorMinErrors0166)
	}
}

// TestVectorsUnmarshal decodes each <jingle/> and stanza <error/> of the
// XEP-0166 examples with xml.Unmarshal alone and checks that xml.Marshal
// gives the same subtree back.
func TestVectorsUnmarshal(t *testing.T) {
	var checked int
	for _, v := range xmltest.Vectors(t, "xep-0166") {
		if !v.WellFormed {
			continue
		}
		t.Run(v.Name(), func(t *testing.T) {
			js, err := xmltest.FindAll(v.Data, vectorJingleName)
			if err != nil {
				t.Fatal(err)
			}
			for _, orig := range js {
				var j jingle.Jingle
				if err := xml.Unmarshal(orig, &j); err != nil {
					t.Fatalf("Unmarshal: %v\n%s", err, orig)
				}
				out, err := xml.Marshal(j)
				if err != nil {
					t.Fatal(err)
				}
				if xmltest.AssertEqual(t, out, orig) {
					checked++
				}
			}
			es, err := xmltest.FindAll(v.Data, vectorErrorName)
			if err != nil {
				t.Fatal(err)
			}
			for _, orig := range es {
				var e jingle.Error
				if err := xml.Unmarshal(orig, &e); err != nil {
					t.Fatalf("Unmarshal: %v\n%s", err, orig)
				}
				out, err := xml.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				// jingle.Error writes an unqualified <error>, to take the
				// stanza's namespace; xmltest reads unqualified names as
				// jabber:client.
				if xmltest.AssertEqual(t, out, orig) {
					checked++
				}
			}
		})
	}
	if checked < vectorMinJingles0166+vectorMinErrors0166 {
		t.Errorf("%d elements round-tripped, want at least %d", checked, vectorMinJingles0166+vectorMinErrors0166)
	}
}

// vectorModels parses one XEP-0166 example and returns its only stanza.
func vectorModels(t *testing.T, name string) *stanzamodel.Stanza {
	t.Helper()
	for _, v := range xmltest.Vectors(t, "xep-0166") {
		if v.Name() != name {
			continue
		}
		ss, err := stanzamodel.NewDefault().Parse(bytes.NewReader(v.Data))
		if err != nil {
			t.Fatalf("%s: %v", v.File, err)
		}
		if len(ss) != 1 {
			t.Fatalf("%s: %d stanzas, want 1", v.File, len(ss))
		}
		return ss[0]
	}
	t.Fatalf("xep-0166/%s.xml is not in the manifest", name)
	return nil
}

func vectorOnlyModel[T any](t *testing.T, s *stanzamodel.Stanza, kind string) *T {
	t.Helper()
	ps := s.Payloads(kind)
	if len(ps) != 1 {
		t.Fatalf("%d %s payloads, want 1: %s", len(ps), kind, s)
	}
	m, ok := ps[0].Model.(*T)
	if !ok {
		t.Fatalf("%s payload is a %T", kind, ps[0].Model)
	}
	return m
}

func TestVectorValues(t *testing.T) {
	t.Run("ex04 session-initiate", func(t *testing.T) {
		s := vectorModels(t, "ex04")
		if typ, _ := s.AttrValue("type"); typ != "set" || s.Name.Local != "iq" {
			t.Errorf("stanza %v type %q", s.Name, typ)
		}
		j := vectorOnlyModel[jingle.Jingle](t, s, stanzamodel.KindJingle)
		if j.Action != jingle.ActionSessionInitiate || !j.Action.Valid() {
			t.Errorf("action = %q", j.Action)
		}
		if j.SID != "a73sjjvkla37jfea" || j.Initiator != "romeo@montague.lit/orchard" || j.Responder != "" {
			t.Errorf("sid %q initiator %q responder %q", j.SID, j.Initiator, j.Responder)
		}
		if len(j.Contents) != 1 {
			t.Fatalf("%d contents, want 1", len(j.Contents))
		}
		c := j.Contents[0]
		if c.Name != "voice" || c.Creator != jingle.CreatorInitiator || c.Key() != (jingle.ContentKey{Creator: jingle.CreatorInitiator, Name: "voice"}) {
			t.Errorf("content %+v", c)
		}
		if c.Description == nil || c.Description.Namespace() != "urn:xmpp:jingle:apps:rtp:1" {
			t.Fatalf("description = %v", c.Description)
		}
		if media, _ := c.Description.AttrValue("media"); media != "audio" {
			t.Errorf("media = %q", media)
		}
		if c.Transport == nil || c.Transport.Namespace() != "urn:xmpp:jingle:transports:ice-udp:1" {
			t.Fatalf("transport = %v", c.Transport)
		}
		if ufrag, _ := c.Transport.AttrValue("ufrag"); ufrag != "8hhy" {
			t.Errorf("ufrag = %q", ufrag)
		}
		if n := strings.Count(c.Description.String(), "<payload-type"); n != 6 {
			t.Errorf("%d payload-types in the description, want 6", n)
		}
		if j.Reason != nil || len(j.Info) != 0 || c.Security != nil || len(c.Extra) != 0 {
			t.Errorf("unexpected reason, info, security or extra: %+v", j)
		}
	})

	t.Run("ex08 reason text", func(t *testing.T) {
		j := vectorOnlyModel[jingle.Jingle](t, vectorModels(t, "ex08"), stanzamodel.KindJingle)
		if j.Action != jingle.ActionSessionTerminate || j.Reason == nil || j.Reason.Condition != jingle.ReasonSuccess || j.Reason.Text != "Sorry, gotta go!" {
			t.Errorf("jingle %+v reason %+v", j, j.Reason)
		}
	})

	t.Run("ex22 alternative-session", func(t *testing.T) {
		j := vectorOnlyModel[jingle.Jingle](t, vectorModels(t, "ex22"), stanzamodel.KindJingle)
		if j.Action != jingle.ActionSessionTerminate || j.SID != "a73sjjvkla37jfea" {
			t.Errorf("action %q sid %q", j.Action, j.SID)
		}
		r := j.Reason
		if r == nil {
			t.Fatal("no reason")
		}
		if r.Condition != jingle.ReasonAlternativeSession || !r.Condition.Valid() || r.SID != "b84tkkwlmb48kgfb" || r.Text != "" || len(r.Extra) != 0 {
			t.Errorf("reason = %+v", r)
		}
	})

	t.Run("ex29 unknown-session", func(t *testing.T) {
		s := vectorModels(t, "ex29")
		if typ, _ := s.AttrValue("type"); typ != "error" {
			t.Errorf("type = %q", typ)
		}
		e := vectorOnlyModel[jingle.Error](t, s, stanzamodel.KindError)
		if e.Condition != stanza.ItemNotFound || e.Type != stanza.Cancel || e.Jingle != jingle.ErrUnknownSession || len(e.Extra) != 0 {
			t.Errorf("error = %+v", e)
		}
		// It is the error XEP-0166 pairs with unknown-session.
		want := jingle.NewError(jingle.ErrUnknownSession, "")
		if e.Type != want.Type || e.Condition != want.Condition {
			t.Errorf("error %+v, NewError gives %+v", e, want)
		}
	})

	t.Run("ex14 redirect", func(t *testing.T) {
		e := vectorOnlyModel[jingle.Error](t, vectorModels(t, "ex14"), stanzamodel.KindError)
		if e.Condition != stanza.Redirect || e.Type != stanza.Modify || e.Jingle != "" {
			t.Errorf("error = %+v", e)
		}
		// The XEP writes the address on its own line; the model keeps the
		// character data as it came.
		if got := strings.TrimSpace(e.ConditionText); got != "xmpp:voicemail@capulet.lit" {
			t.Errorf("ConditionText = %q", e.ConditionText)
		}
	})

	t.Run("ex36 security", func(t *testing.T) {
		j := vectorOnlyModel[jingle.Jingle](t, vectorModels(t, "ex36"), stanzamodel.KindJingle)
		if j.Action != jingle.ActionSecurityInfo || len(j.Contents) != 1 || j.Contents[0].Security == nil ||
			j.Contents[0].Security.Namespace() != "urn:xmpp:jingle:security:xtls:0" || j.Contents[0].Description != nil {
			t.Errorf("jingle %+v", j)
		}
	})
}

// TestUnknownAttributesKept checks that attributes the model does not name
// survive a round trip, without duplicating namespace declarations.
func TestUnknownAttributesKept(t *testing.T) {
	in := `<jingle xmlns='urn:xmpp:jingle:1' xmlns:x='urn:example:x' action='session-info' sid='s' x:flag='1' extra='2'>` +
		`<content creator='initiator' name='c' weird='3'/></jingle>`
	var j jingle.Jingle
	if err := xml.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.ExtraAttrs) != 2 || len(j.Contents[0].ExtraAttrs) != 1 {
		t.Fatalf("extra attrs: jingle %v, content %v", j.ExtraAttrs, j.Contents[0].ExtraAttrs)
	}
	out, err := xml.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := xmltest.Equal([]byte(in), out); !ok {
		t.Fatalf("%s\n%s", diff, out)
	}
}
