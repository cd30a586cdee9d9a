package ibb_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"testing"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/ibb"
)

// wireModels are the IBB elements and a new value of each wire type.
var wireModels = []struct {
	name xml.Name
	kind string
	new  func() any
}{
	{ibb.OpenName, "ibb-open", func() any { return new(ibb.Open) }},
	{ibb.DataName, "ibb-data", func() any { return new(ibb.Data) }},
	{ibb.CloseName, "ibb-close", func() any { return new(ibb.Close) }},
	{ibb.TransportName, "ibb-transport", func() any { return new(ibb.Transport) }},
}

// The XEP examples as the manifest of 2026-06-30 has them. A vector that
// goes missing makes the tests fail.
var wantElements = map[string]map[xml.Name]int{
	"0047": {ibb.OpenName: 1, ibb.DataName: 2, ibb.CloseName: 1},
	"0261": {ibb.TransportName: 3, ibb.DataName: 1, ibb.CloseName: 1},
}

// TestVectorsUnmarshal decodes every IBB element of the well-formed
// XEP-0047 and XEP-0261 examples into its wire type and checks that
// xml.Marshal gives the same infoset back.
func TestVectorsUnmarshal(t *testing.T) {
	for xep, want := range wantElements {
		got := map[xml.Name]int{}
		for _, v := range xmltest.Vectors(t, xep) {
			if !v.WellFormed {
				continue
			}
			t.Run(xep+"/"+v.Name(), func(t *testing.T) {
				for _, wm := range wireModels {
					els, err := xmltest.FindAll(v.Data, wm.name)
					if err != nil {
						t.Fatal(err)
					}
					for _, orig := range els {
						m := wm.new()
						if err := xml.Unmarshal(orig, m); err != nil {
							t.Fatalf("Unmarshal %s: %v\n%s", wm.name.Local, err, orig)
						}
						out, err := xml.Marshal(m)
						if err != nil {
							t.Fatal(err)
						}
						if xmltest.AssertEqual(t, out, orig) {
							got[wm.name]++
						}
					}
				}
			})
		}
		for name, n := range want {
			if got[name] < n {
				t.Errorf("xep-%s: %d <%s/> round-tripped, want at least %d", xep, got[name], name.Local, n)
			}
		}
	}
}

// TestVectorsRoundTrip parses each well-formed example with the stanza
// model (with the IBB models registered as jinglectl does), checks that
// every IBB element became its typed model, writes the stanzas back and
// compares the infoset with the file's.
func TestVectorsRoundTrip(t *testing.T) {
	reg := stanzamodel.NewDefault()
	for _, wm := range wireModels[:3] {
		reg.Register(wm.name, wm.kind, decodeAs(wm.new))
	}
	var checked int
	for _, xep := range []string{"0047", "0261"} {
		for _, v := range xmltest.Vectors(t, xep) {
			if !v.WellFormed {
				continue
			}
			t.Run(xep+"/"+v.Name(), func(t *testing.T) {
				ss, err := reg.Parse(bytes.NewReader(v.Data))
				if err != nil {
					t.Fatal(err)
				}
				var out []byte
				models := map[xml.Name]int{}
				for _, s := range ss {
					for _, wm := range wireModels[:3] {
						for _, p := range s.Payloads(wm.kind) {
							if p.Name != wm.name || fmtType(p.Model) != fmtType(wm.new()) {
								t.Errorf("%s payload named %v, model %T", wm.kind, p.Name, p.Model)
							}
							models[wm.name]++
						}
					}
					b, err := stanzamodel.Marshal(s)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, b...)
				}
				for _, wm := range wireModels[:3] {
					els, err := xmltest.FindAll(v.Data, wm.name)
					if err != nil {
						t.Fatal(err)
					}
					if len(els) != models[wm.name] {
						t.Errorf("%d <%s/> in the file, %d decoded as models", len(els), wm.name.Local, models[wm.name])
					}
				}
				if xmltest.AssertEqual(t, out, v.Data) {
					checked++
				}
			})
		}
	}
	if checked < 9+12 {
		t.Errorf("%d vectors round-tripped, want at least 21", checked)
	}
}

func decodeAs(newT func() any) stanzamodel.DecodeFunc {
	return func(d *xml.Decoder, start xml.StartElement) (any, error) {
		v := newT()
		if err := d.DecodeElement(v, &start); err != nil {
			return nil, err
		}
		return v, nil
	}
}

// TestVectorValues checks the values the XEP examples carry.
func TestVectorValues(t *testing.T) {
	find := func(xep, name string, el xml.Name, v any) {
		t.Helper()
		for _, vec := range xmltest.Vectors(t, xep) {
			if vec.Name() != name {
				continue
			}
			els, err := xmltest.FindAll(vec.Data, el)
			if err != nil || len(els) != 1 {
				t.Fatalf("%s/%s: %d <%s/> (%v)", xep, name, len(els), el.Local, err)
			}
			if err := xml.Unmarshal(els[0], v); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("%s/%s not in the manifest", xep, name)
	}
	var o ibb.Open
	find("0047", "ex01", ibb.OpenName, &o)
	if o.BlockSize != 4096 || o.SID != "i781hf64" || o.Stanza != "iq" {
		t.Errorf("open = %+v", o)
	}
	var iqData, msgData ibb.Data
	find("0047", "ex06", ibb.DataName, &iqData)
	find("0047", "ex11", ibb.DataName, &msgData)
	b1, err := iqData.Bytes()
	if err != nil {
		t.Fatalf("ex06 payload: %v", err)
	}
	b2, err := msgData.Bytes()
	if err != nil {
		t.Fatalf("ex11 payload: %v", err)
	}
	if iqData.Seq != 0 || iqData.SID != "i781hf64" || len(b1) != 240 || !bytes.Equal(b1, b2) {
		t.Errorf("data seq %d sid %q: %d bytes; message data equal: %v", iqData.Seq, iqData.SID, len(b1), bytes.Equal(b1, b2))
	}
	var offer, answer ibb.Transport
	find("0261", "ex01", ibb.TransportName, &offer)
	find("0261", "ex03", ibb.TransportName, &answer)
	if offer.BlockSize != 4096 || answer.BlockSize != 2048 || offer.SID != "ch3d9s71" || answer.SID != offer.SID || offer.Stanza != "" {
		t.Errorf("offer %+v, answer %+v", offer, answer)
	}
	var cl ibb.Close
	find("0261", "ex11", ibb.CloseName, &cl)
	if cl.SID != "bt8a71h6" {
		t.Errorf("close = %+v", cl)
	}
}

func TestNewData(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4096, 65535} {
		p := bytes.Repeat([]byte{0xA5, 0x00, 0xFF}, n/3+1)[:n]
		d := ibb.NewData("s", 65535, p)
		b, err := xml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back ibb.Data
		if err := xml.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.Bytes()
		if err != nil || !bytes.Equal(got, p) || back.Seq != 65535 || back.SID != "s" {
			t.Fatalf("%d bytes: got %d bytes, seq %d, err %v", n, len(got), back.Seq, err)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // base64 of the expected output, or "!" for an error
	}{
		{"empty", "", ""},
		{"plain", "aGVsbG8=", "aGVsbG8="},
		{"no padding needed", "aGVsbG8h", "aGVsbG8h"},
		{"xml white space", "\n    aGVs\r\n\tbG8=\n  ", "aGVsbG8="},
		{"missing padding", "aGVsbG8", "!"},
		{"pad first", "=AAA", "!"},
		{"pad in the middle", "BBBB=CCC", "!"},
		{"pad then data", "aGVsbG8=aGVs", "!"},
		{"url alphabet", "-_-_", "!"},
		{"other character", "aGVs*G8=", "!"},
		{"nul", "aGVs\x00G8=", "!"},
		{"non-ascii", "aGVsbG8é", "!"},
		{"non-zero pad bits", "aGVsbG9=", "!"},
		{"form feed", "aGVs\fbG8=", "!"},
		{"too much padding", "aGVsbA===", "!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ibb.DecodeBase64(nil, []byte(tc.in))
			if tc.want == "!" {
				if err == nil || !errors.Is(err, ibb.ErrBadBase64) {
					t.Fatalf("DecodeBase64(%q) = %q, %v; want ErrBadBase64", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBase64(%q): %v", tc.in, err)
			}
			if enc := base64.StdEncoding.EncodeToString(got); enc != tc.want {
				t.Fatalf("DecodeBase64(%q) = %s, want %s", tc.in, enc, tc.want)
			}
		})
	}
	// Appends to dst.
	got, err := ibb.DecodeBase64([]byte("ab"), []byte("Y2Q="))
	if err != nil || string(got) != "abcd" {
		t.Fatalf("append: %q, %v", got, err)
	}
}

func fmtType(v any) string { return fmt.Sprintf("%T", v) }

// TestNewDataStandardBase64: the payload is what encoding/base64 writes,
// for every length around the SIMD encoder's blocks and the largest block.
func TestNewDataStandardBase64(t *testing.T) {
	p := make([]byte, 65535)
	for i := range p {
		p[i] = byte(i*131 + i>>8)
	}
	for n := 0; n <= 65535; n++ {
		if n > 300 && n < 65500 {
			n = 65500
		}
		if got, want := ibb.NewData("s", 0, p[:n]).Payload, base64.StdEncoding.EncodeToString(p[:n]); got != want {
			t.Fatalf("%d bytes: payload differs from encoding/base64", n)
		}
	}
}
