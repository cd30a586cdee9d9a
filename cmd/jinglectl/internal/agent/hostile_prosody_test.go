package agent

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// hostilePeer is a raw XMPP client on the test Prosody: it sends crafted
// stanzas and acknowledges (and records) every <jingle/> it is sent.
type hostilePeer struct {
	c    *xmppclient.Client
	me   jid.JID
	seen chan *jingle.Jingle
}

func newHostilePeer(t *testing.T, addr, pass, server, caFile string) *hostilePeer {
	t.Helper()
	p := &hostilePeer{me: jid.MustParse(addr), seen: make(chan *jingle.Jingle, 256)}
	h := mux.New(stanza.NSClient, mux.IQFunc(stanza.SetIQ, xml.Name{Space: jingle.NS, Local: "jingle"},
		func(iq stanza.IQ, r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var j jingle.Jingle
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&j); err == nil {
				select {
				case p.seen <- &j:
				default:
				}
			}
			_, err := xmlstream.Copy(r, iq.Result(nil))
			return err
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{JID: p.me, Password: pass, Server: server, CAFile: caFile,
		Handler: h, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	p.c = c
	return p
}

// answer is what an IQ got back: "result", or the error's XMPP condition
// and its Jingle condition, if any.
type answer struct{ cond, jingle string }

func (a answer) String() string {
	if a.jingle != "" {
		return a.cond + "+" + a.jingle
	}
	return a.cond
}

// iq sends payload in an IQ of type typ to to and returns the answer.
func (p *hostilePeer) iq(ctx context.Context, t *testing.T, to jid.JID, typ stanza.IQType, payload string) answer {
	t.Helper()
	resp, err := p.c.Session().SendIQElement(ctx, xml.NewDecoder(strings.NewReader(payload)), stanza.IQ{To: to, Type: typ})
	if err != nil {
		t.Fatalf("sending %s: %v", payload, err)
	}
	defer resp.Close()
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, resp); err != nil {
		t.Fatal(err)
	}
	enc.Flush()
	var v struct {
		Type string `xml:"type,attr"`
		Err  *struct {
			Children []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"error"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatalf("answer %s: %v", buf.String(), err)
	}
	if v.Type != "error" {
		return answer{cond: v.Type}
	}
	var a answer
	if v.Err != nil {
		for _, c := range v.Err.Children {
			switch {
			case c.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.XMLName.Local != "text":
				a.cond = c.XMLName.Local
			case c.XMLName.Space == jingle.NSErrors:
				a.jingle = c.XMLName.Local
			}
		}
	}
	return a
}

// expect waits for a <jingle/> of the action with sid, skipping others.
func (p *hostilePeer) expect(t *testing.T, a jingle.Action, sid string, within time.Duration) *jingle.Jingle {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case j := <-p.seen:
			if j.Action == a && j.SID == sid {
				return j
			}
		case <-timeout:
			t.Fatalf("%s never got %s for %s", p.me, a, sid)
			return nil
		}
	}
}

const (
	nsFT    = "urn:xmpp:jingle:apps:file-transfer:5"
	nsIBBT  = "urn:xmpp:jingle:transports:ibb:1"
	nsS5BT  = "urn:xmpp:jingle:transports:s5b:1"
	nsIBB   = "http://jabber.org/protocol/ibb"
	hashUse = `<hash-used xmlns='urn:xmpp:hashes:2' algo='sha-256'/>`
)

// ftFile is a <file/> with a name, a size and sha-256 announced.
func ftFile(name, size string) string {
	return `<file><name>` + name + `</name><size>` + size + `</size>` + hashUse + `</file>`
}

func ibbTransport(sid, bs string) string {
	return `<transport xmlns='` + nsIBBT + `' sid='` + sid + `' block-size='` + bs + `'/>`
}

// initiate is a session-initiate from {ME} with contents, each a
// description and a transport.
func initiate(contents ...string) string {
	var b strings.Builder
	b.WriteString(`<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='{SID}' initiator='{ME}'>`)
	for i, c := range contents {
		fmt.Fprintf(&b, `<content creator='initiator' name='c%d' senders='initiator'>%s</content>`, i, c)
	}
	b.WriteString(`</jingle>`)
	return b.String()
}

func ftContent(file, transport string) string {
	return `<description xmlns='` + nsFT + `'>` + file + `</description>` + transport
}

// validOffer is the offer of the sessions hostile actions are tried in.
var validOffer = initiate(ftContent(ftFile("f.bin", "100"), ibbTransport("{IBBSID}", "4096")))

func action(a, inner string) string {
	return `<jingle xmlns='urn:xmpp:jingle:1' action='` + a + `' sid='{SID}'>` + inner + `</jingle>`
}

func reasonEl(cond string) string { return `<reason><` + cond + `/></reason>` }

// hostileCase is one hostile input and what it must get.
type hostileCase struct {
	name string
	// inSession: the payload is sent within a session {ME} opened with
	// validOffer and bob accepted.
	inSession bool
	// eve: sent by an account bob does not accept files from.
	eve     bool
	typ     stanza.IQType // default set
	payload string
	want    string // "result" or "condition" or "condition+jingle-condition"
	// end: bob must end the session with this reason ("" : no session
	// may come of it).
	end string
}

func hostileCases() []hostileCase {
	many := make([]string, 33)
	for i := range many {
		many[i] = ftContent(ftFile(fmt.Sprintf("m%d", i), "1"), ibbTransport(fmt.Sprintf("{IBBSID}-%d", i), "4096"))
	}
	seventeen := many[:17]
	unknown := func(a string) hostileCase {
		return hostileCase{name: a + " of an unknown session", payload: action(a, `<content creator='initiator' name='c0'/>`), want: "item-not-found+unknown-session"}
	}
	cs := []hostileCase{
		// The <jingle/> element itself.
		{name: "no action", payload: `<jingle xmlns='urn:xmpp:jingle:1' sid='{SID}'/>`, want: "bad-request"},
		{name: "unknown action", payload: action("session-frobnicate", ""), want: "bad-request"},
		{name: "no sid", payload: `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='{ME}'/>`, want: "bad-request"},
		{name: "malformed XML content", payload: `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='{SID}'><content creator='initiator' name='c0'><size>x</size></content><content/></jingle>`, want: "bad-request"},
		{name: "reason without condition", payload: action("session-terminate", `<reason><text>bye</text></reason>`), want: "bad-request"},
		{name: "unknown reason", payload: action("session-terminate", reasonEl("bored")), want: "bad-request"},
		{name: "more contents than the limit", payload: initiate(many...), want: "policy-violation"},
		{name: "jingle in an IQ get", typ: stanza.GetIQ, payload: validOffer, want: "service-unavailable"},

		// session-initiate refused at the IQ level.
		{name: "initiate without content", payload: initiate(), want: "bad-request"},
		{name: "content without name", payload: strings.Replace(validOffer, "name='c0'", "", 1), want: "bad-request"},
		{name: "content without creator", payload: strings.Replace(validOffer, "creator='initiator'", "", 1), want: "bad-request"},
		{name: "content created by the responder", payload: strings.Replace(validOffer, "creator='initiator'", "creator='responder'", 1), want: "bad-request"},
		{name: "bad creator", payload: strings.Replace(validOffer, "creator='initiator'", "creator='nobody'", 1), want: "bad-request"},
		{name: "bad senders", payload: strings.Replace(validOffer, "senders='initiator'", "senders='everyone'", 1), want: "bad-request"},
		{name: "content without description", payload: initiate(ibbTransport("{IBBSID}", "4096")), want: "bad-request"},
		{name: "content without transport", payload: initiate(`<description xmlns='` + nsFT + `'>` + ftFile("a", "1") + `</description>`), want: "bad-request"},
		{name: "duplicate content names", payload: strings.Replace(initiate(ftContent(ftFile("a", "1"), ibbTransport("{IBBSID}", "4096")), ftContent(ftFile("b", "1"), ibbTransport("{IBBSID}-2", "4096"))), "name='c1'", "name='c0'", 1), want: "bad-request"},
		{name: "no content of disposition session", payload: strings.Replace(validOffer, "senders='initiator'", "senders='initiator' disposition='early-session'", 1), want: "bad-request"},
		{name: "initiator of another account", payload: strings.Replace(validOffer, "initiator='{ME}'", "initiator='carol@localhost/x'", 1), want: "not-acceptable"},
		{name: "initiator not a JID", payload: strings.Replace(validOffer, "initiator='{ME}'", "initiator='@@'", 1), want: "bad-request"},

		// Actions on sessions that do not exist.
		unknown("session-accept"), unknown("session-info"), unknown("session-terminate"),
		unknown("content-accept"), unknown("content-add"), unknown("content-modify"),
		unknown("content-reject"), unknown("content-remove"), unknown("description-info"),
		unknown("security-info"), unknown("transport-accept"), unknown("transport-info"),
		unknown("transport-reject"), unknown("transport-replace"),

		// Offers the file-transfer application refuses after the IQ.
		{name: "unknown application", payload: initiate(`<description xmlns='urn:example:nothing'/>` + ibbTransport("{IBBSID}", "4096")), want: "result", end: "unsupported-applications"},
		{name: "unknown transport", payload: initiate(ftContent(ftFile("a", "1"), `<transport xmlns='urn:example:carrier-pigeon'/>`)), want: "result", end: "unsupported-transports"},
		{name: "description without file", payload: initiate(`<description xmlns='` + nsFT + `'/>` + ibbTransport("{IBBSID}", "4096")), want: "result", end: "failed-application"},
		{name: "negative size", payload: initiate(ftContent(ftFile("a", "-5"), ibbTransport("{IBBSID}", "4096"))), want: "result", end: "failed-application"},
		{name: "size over the limit", payload: initiate(ftContent(ftFile("a", "99999999999999"), ibbTransport("{IBBSID}", "4096"))), want: "result", end: "media-error"},
		{name: "only unknown hash algorithms", payload: initiate(ftContent(`<file><name>a</name><size>3</size><hash-used xmlns='urn:xmpp:hashes:2' algo='md5'/></file>`, ibbTransport("{IBBSID}", "4096"))), want: "result", end: "failed-application"},
		{name: "range beyond the size", payload: initiate(ftContent(`<file><name>a</name><size>3</size><range offset='4'/>`+hashUse+`</file>`, ibbTransport("{IBBSID}", "4096"))), want: "result", end: "failed-application"},
		{name: "negative range", payload: initiate(ftContent(`<file><name>a</name><size>3</size><range offset='-1'/>`+hashUse+`</file>`, ibbTransport("{IBBSID}", "4096"))), want: "result", end: "failed-application"},
		{name: "offer from an account not accepted", eve: true, payload: validOffer, want: "result", end: "decline"},
		{name: "IBB block-size zero", payload: initiate(ftContent(ftFile("a", "1"), ibbTransport("{IBBSID}", "0"))), want: "result", end: "failed-transport"},
		{name: "IBB without sid", payload: initiate(ftContent(ftFile("a", "1"), `<transport xmlns='`+nsIBBT+`' block-size='4096'/>`)), want: "result", end: "failed-transport"},

		// Offers that are taken but whose transport never comes up (D2):
		// bob ends them at the connect timeout and creates nothing.
		{name: "IBB offer never opened", payload: validOffer, want: "result", end: "timeout"},
		{name: "traversal name, never opened", payload: initiate(ftContent(ftFile("../../../etc/passwd", "10"), ibbTransport("{IBBSID}", "4096"))), want: "result", end: "timeout"},
		{name: "store's own name, never opened", payload: initiate(ftContent(ftFile(".jinglekit-partial", "10"), ibbTransport("{IBBSID}", "4096"))), want: "result", end: "timeout"},
		{name: "seventeen files, never opened", payload: initiate(seventeen...), want: "result", end: "timeout"},
		{name: "SOCKS5 to a closed port, then silence", payload: initiate(ftContent(ftFile("a", "10"), `<transport xmlns='`+nsS5BT+`' sid='{IBBSID}' mode='tcp'><candidate cid='c1' host='127.0.0.1' port='1' jid='{ME}' priority='1' type='direct'/></transport>`)), want: "result", end: "timeout"},

		// In-band bytestream stanzas outside any session.
		{name: "IBB open of no session", payload: `<open xmlns='` + nsIBB + `' sid='nosuch' block-size='4096'/>`, want: "not-acceptable"},
		{name: "IBB data of no session", payload: `<data xmlns='` + nsIBB + `' sid='nosuch' seq='0'>AAAA</data>`, want: "item-not-found"},
		{name: "IBB close of no session", payload: `<close xmlns='` + nsIBB + `' sid='nosuch'/>`, want: "item-not-found"},
		{name: "IBB open in an IQ get", typ: stanza.GetIQ, payload: `<open xmlns='` + nsIBB + `' sid='nosuch' block-size='4096'/>`, want: "service-unavailable"},
		{name: "unknown IBB element", payload: `<frob xmlns='` + nsIBB + `' sid='nosuch'/>`, want: "service-unavailable"},

		// Other IQs.
		{name: "unknown namespace", payload: `<query xmlns='urn:example:nothing'/>`, want: "service-unavailable"},
		{name: "SOCKS5 bytestreams query", payload: `<query xmlns='http://jabber.org/protocol/bytestreams' sid='x'><streamhost jid='{ME}' host='127.0.0.1' port='1'/></query>`, want: "service-unavailable"},

		// Within a session bob accepted.
		{name: "session-initiate again", inSession: true, payload: validOffer, want: "unexpected-request+out-of-order"},
		{name: "session-accept by the initiator", inSession: true, payload: action("session-accept", `<content creator='initiator' name='c0'>`+ibbTransport("{IBBSID}", "4096")+`</content>`), want: "unexpected-request+out-of-order"},
		{name: "transport-accept without replace", inSession: true, payload: action("transport-accept", `<content creator='initiator' name='c0'>`+ibbTransport("{IBBSID}", "4096")+`</content>`), want: "unexpected-request+out-of-order"},
		{name: "content-accept of nothing pending", inSession: true, payload: action("content-accept", `<content creator='initiator' name='c0'/>`), want: "unexpected-request+out-of-order"},
		{name: "action on an unknown content", inSession: true, payload: action("content-remove", `<content creator='initiator' name='nosuch'/>`), want: "bad-request"},
		{name: "session-info with an unknown payload", inSession: true, payload: action("session-info", `<frob xmlns='urn:example:nothing'/>`), want: "feature-not-implemented+unsupported-info"},
		{name: "transport-info for another method", inSession: true, payload: action("transport-info", `<content creator='initiator' name='c0'><transport xmlns='urn:example:carrier-pigeon'/></content>`), want: "feature-not-implemented+unsupported-info"},
		{name: "checksum of an unknown content", inSession: true, payload: action("session-info", `<checksum xmlns='`+nsFT+`' creator='initiator' name='nosuch'><file><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAA</hash></file></checksum>`), want: "result"},
		{name: "IBB data before open", inSession: true, payload: `<data xmlns='` + nsIBB + `' sid='{IBBSID}' seq='0'>AAAA</data>`, want: "item-not-found"},
		{name: "IBB open with another sid", inSession: true, payload: `<open xmlns='` + nsIBB + `' sid='{IBBSID}-other' block-size='4096'/>`, want: "not-acceptable"},
		{name: "IBB open with a larger block-size", inSession: true, payload: `<open xmlns='` + nsIBB + `' sid='{IBBSID}' block-size='65535'/>`, want: "resource-constraint"},
		{name: "IBB open with a bad block-size", inSession: true, payload: `<open xmlns='` + nsIBB + `' sid='{IBBSID}' block-size='many'/>`, want: "bad-request"},
		{name: "IBB close before open", inSession: true, payload: `<close xmlns='` + nsIBB + `' sid='{IBBSID}'/>`, want: "item-not-found"},
		{name: "session-terminate from another account", inSession: true, eve: true, payload: action("session-terminate", reasonEl("success")), want: "item-not-found+unknown-session"},
	}
	return cs
}

// TestHostilePeer (issue 13) sends hostile stanzas from a raw client on a
// real Prosody to a receiving agent connection: each gets the expected XMPP
// answer, and none leaves a file in the directory or a session behind.
func TestHostilePeer(t *testing.T) {
	srv := prosody.Get(t)
	bj, bp := srv.NewUser(t, "bob")
	mj, mp := srv.NewUser(t, "mallory")
	ej, ep := srv.NewUser(t, "eve")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bob, err := Connect(ctx, Options{
		Config: Config{JID: bj + "/recv", Password: bp, Servers: []string{srv.C2SAddr}, CAFile: srv.CAFile,
			AllowLoopback: true, ConnectTimeout: 2 * time.Second},
		Receive: &ReceiveOptions{Dir: dir, AcceptFrom: []jid.JID{jid.MustParse(mj)}},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bob.Close(cctx)
	})
	bobJID := bob.LocalAddr()
	mallory := newHostilePeer(t, mj+"/m", mp, srv.C2SAddr, srv.CAFile)
	eve := newHostilePeer(t, ej+"/e", ep, srv.C2SAddr, srv.CAFile)

	cases := hostileCases()
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sid := fmt.Sprintf("hostile%03d", i)
			from := mallory
			if tc.eve && !tc.inSession {
				from = eve
			}
			expand := func(s string) string {
				return strings.NewReplacer("{SID}", sid, "{IBBSID}", "ibb"+sid, "{ME}", from.me.String(), "{BOB}", bobJID.String()).Replace(s)
			}
			if tc.inSession {
				p := strings.NewReplacer("{SID}", sid, "{IBBSID}", "ibb"+sid, "{ME}", mallory.me.String()).Replace(validOffer)
				if a := mallory.iq(ctx, t, bobJID, stanza.SetIQ, p); a.cond != "result" {
					t.Fatalf("the valid offer got %s", a)
				}
				mallory.expect(t, jingle.ActionSessionAccept, sid, 15*time.Second)
				if tc.eve {
					from = eve
					expand = func(s string) string {
						return strings.NewReplacer("{SID}", sid, "{IBBSID}", "ibb"+sid, "{ME}", eve.me.String()).Replace(s)
					}
				}
			}
			typ := tc.typ
			if typ == "" {
				typ = stanza.SetIQ
			}
			got := from.iq(ctx, t, bobJID, typ, expand(tc.payload))
			if got.String() != tc.want {
				t.Errorf("answer %s, want %s", got, tc.want)
			}
			switch {
			case tc.inSession:
				// mallory ends it; bob may have ended it first (timeout).
				_ = mallory.iq(ctx, t, bobJID, stanza.SetIQ, expand(action("session-terminate", reasonEl("cancel"))))
			case tc.end != "":
				j := from.expect(t, jingle.ActionSessionTerminate, sid, 20*time.Second)
				if j.Reason == nil || string(j.Reason.Condition) != tc.end {
					t.Errorf("bob ended the session with %v, want %s", j.Reason, tc.end)
				}
			}
			noStateLeft(t, bob, dir)
		})
	}
}

// noStateLeft checks that bob has no session left and nothing in dir.
func noStateLeft(t *testing.T, bob *Conn, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for bob.ActiveSessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("bob keeps %d sessions", bob.ActiveSessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s was created in the receive directory", e.Name())
	}
}
