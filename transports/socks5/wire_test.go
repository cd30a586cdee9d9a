package socks5_test

import (
	"bufio"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// dstaddrCase is one dstaddr attribute found in an example, with what the
// example says the hash is made of.
type dstaddrCase struct {
	where, sid, requester, target, want string
}

// jingleDstaddrCases reads the <iq><jingle><content><transport dstaddr/>
// of one stanza: the requester is the party that offers the candidates,
// that is the sender of the stanza.
func jingleDstaddrCases(t *testing.T, where string, stanza []byte) []dstaddrCase {
	t.Helper()
	var iq struct {
		From   string        `xml:"from,attr"`
		To     string        `xml:"to,attr"`
		Jingle jingle.Jingle `xml:"urn:xmpp:jingle:1 jingle"`
	}
	if err := xml.Unmarshal(stanza, &iq); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var out []dstaddrCase
	for _, c := range iq.Jingle.Contents {
		if c.Transport == nil || c.Transport.Namespace() != socks5.NS {
			continue
		}
		var tr socks5.Transport
		if err := c.Transport.Decode(&tr); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if tr.DstAddr == "" {
			continue
		}
		out = append(out, dstaddrCase{where: where, sid: tr.SID, requester: iq.From, target: iq.To, want: tr.DstAddr})
	}
	return out
}

// TestDstAddrExamples checks DstAddr against every dstaddr of the XEP
// examples and of the Libervia session sample: XEP-0260 ex01 (the
// initiator's, SHA1(sid + initiator + responder)), ex03 (the responder's,
// SHA1(sid + responder + initiator)), XEP-0065 ex25 (SHA1(sid + requester
// + target)), and the session-initiate and session-accept of Libervia 0.9.
func TestDstAddrExamples(t *testing.T) {
	var cases []dstaddrCase
	for _, f := range []string{"ex01", "ex03"} {
		for _, v := range xmltest.Vectors(t, "0260") {
			if v.Name() == f {
				cases = append(cases, jingleDstaddrCases(t, "xep-0260/"+f, v.Data)...)
			}
		}
	}
	if len(cases) != 2 {
		t.Fatalf("%d dstaddr attributes in XEP-0260 ex01 and ex03, want 2", len(cases))
	}
	for _, v := range xmltest.Vectors(t, "0065") {
		if v.Name() != "ex25" {
			continue
		}
		var iq struct {
			From  string       `xml:"from,attr"`
			To    string       `xml:"to,attr"`
			Query socks5.Query `xml:"http://jabber.org/protocol/bytestreams query"`
		}
		if err := xml.Unmarshal(v.Data, &iq); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, dstaddrCase{"xep-0065/ex25", iq.Query.SID, iq.From, iq.To, iq.Query.DstAddr})
	}
	if len(cases) != 3 {
		t.Fatal("XEP-0065 ex25 missing")
	}

	// The Libervia sample: one stanza per line after the "from -> to" line.
	sample := filepath.Join(xmltest.SharedDir(t), "peers", "libervia", "sample-session.log")
	if f, err := os.Open(sample); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		n := 0
		for line := 1; sc.Scan(); line++ {
			text := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(text, "<iq") || !strings.Contains(text, "dstaddr=") || !strings.Contains(text, "urn:xmpp:jingle:1") {
				continue
			}
			cs := jingleDstaddrCases(t, "libervia sample line "+strconv.Itoa(line), []byte(text))
			n += len(cs)
			cases = append(cases, cs...)
		}
		if n < 4 {
			t.Errorf("%d dstaddr attributes in the Libervia sample, want at least 4", n)
		}
	} else {
		t.Logf("no Libervia sample: %v", err)
	}

	for _, c := range cases {
		if got := socks5.DstAddr(c.sid, c.requester, c.target); got != c.want {
			t.Errorf("%s: DstAddr(%q, %q, %q) = %s, the example has %s", c.where, c.sid, c.requester, c.target, got, c.want)
		}
		// The other order is a different hash: the direction matters.
		if got := socks5.DstAddr(c.sid, c.target, c.requester); got == c.want {
			t.Errorf("%s: the hash does not depend on the order", c.where)
		}
	}
}

func TestPriority(t *testing.T) {
	for _, c := range []struct {
		typ  socks5.CandidateType
		lp   uint16
		want uint32
	}{
		// Libervia 0.9's direct and proxy candidates.
		{socks5.TypeDirect, 10000, 8267536},
		{socks5.TypeProxy, 0, 655360},
		{"", 0, 126 << 16},
		{socks5.TypeAssisted, 65535, 120<<16 + 65535},
		{socks5.TypeTunnel, 1, 110<<16 + 1},
	} {
		if got := socks5.Priority(c.typ, c.lp); got != c.want {
			t.Errorf("Priority(%q, %d) = %d, want %d", c.typ, c.lp, got, c.want)
		}
	}
	if _, ok := socks5.CandidateType("relay").Preference(); ok {
		t.Error("unknown type has a preference")
	}
}

func TestCandidateAccessors(t *testing.T) {
	for _, c := range []struct {
		port, prio string
		wantPort   uint16
		wantPrio   uint32
		portOK     bool
		prioOK     bool
	}{
		{"", "1", 1080, 1, true, true},
		{"5086", "8257636", 5086, 8257636, true, true},
		{"0", "0", 0, 0, false, false},
		{"65536", "-1", 0, 0, false, false},
		{"x", "4294967296", 0, 0, false, false},
		{"65535", "4294967295", 65535, 4294967295, true, true},
	} {
		cand := socks5.Candidate{Port: c.port, Priority: c.prio}
		p, err := cand.PortNumber()
		if (err == nil) != c.portOK || p != c.wantPort {
			t.Errorf("port %q: %d, %v", c.port, p, err)
		}
		pr, err := cand.PriorityValue()
		if (err == nil) != c.prioOK || pr != c.wantPrio {
			t.Errorf("priority %q: %d, %v", c.prio, pr, err)
		}
	}
}
