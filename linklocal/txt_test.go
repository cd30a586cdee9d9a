package linklocal_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/linklocal"
)

func TestTXTRoundTrip(t *testing.T) {
	for _, in := range []linklocal.TXT{
		{},
		{Nick: "JuliC", Status: "away", Msg: "Hanging out downtown"},
		{
			Status: "avail", Msg: "Hanging out downtown", Nick: "JuliC", First: "Juliet", Last: "Capulet",
			Email: "juliet@capulet.lit", JID: "juliet@capulet.lit", Node: "http://www.adiumx.com", Hash: "sha-1",
			Ver: "QgayPKawpkPSDYmwT/WM94uAlu0=", PortP2PJ: 5562, PHSH: "a3839614e1a382bcfebbcf20464f519e81770813", VC: "CA!",
			Extra: map[string]string{"AIM": "x", "n": "Exodus"},
		},
		{Msg: "ünïcødé ✓ = with = signs", Nick: strings.Repeat("n", 250)},
	} {
		ss, err := in.Strings()
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		if ss[0] != "txtvers=1" {
			t.Fatalf("first string %q, want txtvers=1", ss[0])
		}
		out, err := linklocal.ParseTXT(ss)
		if err != nil {
			t.Fatal(err)
		}
		in.TxtVers = "1"
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n in  %+v\n out %+v", in, out)
		}
	}
}

// TestTXTExample reads the TXT record of XEP-0174 §3.1.
func TestTXTExample(t *testing.T) {
	rec := []string{"txtvers=1", "1st=Juliet", "email=juliet@capulet.lit ", "hash=sha-1", "jid=juliet@capulet.lit",
		"last=Capulet", "msg=Hanging out downtown", "nick=JuliC", "node=http://www.adiumx.com",
		"phsh=a3839614e1a382bcfebbcf20464f519e81770813", "port.p2pj=5562", "status=avail", "vc=CA!", "ver=QgayPKawpkPSDYmwT/WM94uAlu0="}
	txt, err := linklocal.ParseTXT(rec)
	if err != nil {
		t.Fatal(err)
	}
	if txt.First != "Juliet" || txt.Nick != "JuliC" || txt.PortP2PJ != 5562 || txt.Ver != "QgayPKawpkPSDYmwT/WM94uAlu0=" || txt.Show() != "avail" || txt.Extra != nil {
		t.Fatalf("%+v", txt)
	}
}

func TestTXTHostile(t *testing.T) {
	big := make([]string, 0, 40)
	for i := 0; i < 40; i++ {
		big = append(big, "k"+strings.Repeat("x", 100)+"="+strings.Repeat("v", 150))
	}
	for _, tc := range []struct {
		name string
		in   []string
		err  error
		want func(linklocal.TXT) bool
	}{
		{"huge", big, linklocal.ErrTXTTooLarge, nil},
		{"txtvers 2", []string{"txtvers=2", "nick=x"}, linklocal.ErrTXTVersion, nil},
		{"txtvers garbage", []string{"txtvers=\x00\xff"}, linklocal.ErrTXTVersion, nil},
		{"txtvers later counts too", []string{"nick=x", "txtvers=7"}, linklocal.ErrTXTVersion, nil},
		{"empty record", []string{""}, nil, func(t linklocal.TXT) bool { return reflect.DeepEqual(t, linklocal.TXT{}) }},
		{"no txtvers", []string{"nick=n"}, nil, func(t linklocal.TXT) bool { return t.Nick == "n" }},
		{"duplicate keys: first wins", []string{"nick=first", "NICK=second"}, nil, func(t linklocal.TXT) bool { return t.Nick == "first" }},
		{"port out of range ignored", []string{"port.p2pj=99999"}, nil, func(t linklocal.TXT) bool { return t.PortP2PJ == 0 }},
		{"port not a number ignored", []string{"port.p2pj=http"}, nil, func(t linklocal.TXT) bool { return t.PortP2PJ == 0 }},
		{"invalid UTF-8 repaired", []string{"msg=a\xffb"}, nil, func(t linklocal.TXT) bool { return t.Msg == "a\uFFFDb" }},
		{"empty key skipped", []string{"=x", "nick=y"}, nil, func(t linklocal.TXT) bool { return t.Nick == "y" && t.Extra == nil }},
		{"boolean registered key", []string{"nick"}, nil, func(t linklocal.TXT) bool { return t.Nick == "" }},
		{"unknown status is avail", []string{"status=partying"}, nil, func(t linklocal.TXT) bool { return t.Show() == linklocal.StatusAvail }},
		{"extra keys bounded", func() []string {
			var s []string
			for i := 0; i < 100; i++ {
				s = append(s, "x"+strings.Repeat("y", i%50)+string(rune('a'+i%26))+"=1")
			}
			return s
		}(), nil, func(t linklocal.TXT) bool { return len(t.Extra) <= linklocal.MaxTXTExtra }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := linklocal.ParseTXT(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, linklocal.TXT{}) {
					t.Fatalf("got %+v, %v; want %v and nothing", got, err, tc.err)
				}
				return
			}
			if err != nil || !tc.want(got) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestTXTStringsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   linklocal.TXT
	}{
		{"value too long", linklocal.TXT{Msg: strings.Repeat("m", 300)}},
		{"not UTF-8", linklocal.TXT{Nick: "\xff"}},
		{"extra key with =", linklocal.TXT{Extra: map[string]string{"a=b": "c"}}},
		{"extra key shadows a registered one", linklocal.TXT{Extra: map[string]string{"Nick": "c"}}},
		{"port", linklocal.TXT{PortP2PJ: 70000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ss, err := tc.in.Strings(); err == nil {
				t.Fatalf("accepted: %q", ss)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	for _, ok := range []string{"juliet@pronto", "romeo@forza", "Juliet@Pronto-1", "ünïcødé@host-2"} {
		if _, err := linklocal.ParseName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "juliet", "@pronto", "juliet@", "juliet@prönto", "a@b@c", "jo.doe@host", `a\b@host`,
		"juliet@pronto/res", "juliet@-pronto", "x@host.local", "ju\nliet@pronto", strings.Repeat("u", 60) + "@host", "a\xff@b", "x@host_2"} {
		if j, err := linklocal.ParseName(bad); !errors.Is(err, linklocal.ErrInvalidName) {
			t.Errorf("%q: accepted as %s (%v)", bad, j, err)
		}
	}
}
