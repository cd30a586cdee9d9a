package rtp_test

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// canon rebuilds a description field by field, so that it is written in
// field order whatever order it was read in, and drops what SDP cannot
// carry: the 'required' of <encryption/> and the per-payload-type
// ptime/maxptime (SDP has one per m= section; the first is kept).
func canon(d rtp.Description) rtp.Description {
	out := rtp.Description{Media: d.Media, SSRC: d.SSRC, RTCPFB: d.RTCPFB, TrrInt: d.TrrInt, HdrExts: d.HdrExts,
		ExtmapAllowMixed: d.ExtmapAllowMixed, SSRCGroups: d.SSRCGroups, Sources: d.Sources, RTCPMux: d.RTCPMux,
		Bandwidth: d.Bandwidth}
	for _, p := range d.PayloadTypes {
		out.PayloadTypes = append(out.PayloadTypes, rtp.PayloadType{ID: p.ID, Name: p.Name, ClockRate: p.ClockRate,
			Channels: p.Channels, Parameters: p.Parameters, RTCPFB: p.RTCPFB, TrrInt: p.TrrInt})
	}
	if d.Encryption != nil {
		out.Encryption = &rtp.Encryption{Crypto: d.Encryption.Crypto}
	}
	return out
}

func xmlOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := xml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// viaSDP maps m to SDP text and back.
func viaSDP(t testing.TB, m rtp.Media, o rtp.SDPOptions) (rtp.Media, string) {
	t.Helper()
	sd, err := rtp.ToSDP(m, o)
	if err != nil {
		t.Fatal(err)
	}
	text, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back sdp.SessionDescription
	if err := back.Unmarshal(text); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	m2, err := rtp.FromSDP(&back, o)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return m2, string(text)
}

// TestSDPVectors: each <jingle/> of the XEP examples whose RTP contents
// use ICE-UDP goes Jingle → SDP → Jingle and keeps, per content, its
// name, senders, description (modulo what SDP cannot carry, see canon),
// ICE credentials, fingerprints and candidates (but the candidate id,
// which SDP has not: the mapping gives each a fresh one).
func TestSDPVectors(t *testing.T) {
	name := xml.Name{Space: jingle.NS, Local: "jingle"}
	checked := 0
	for _, xep := range []string{"xep-0167", "xep-0320", "xep-0353", "xep-0293"} {
		for _, v := range xmltest.Vectors(t, xep) {
			if !v.WellFormed {
				continue
			}
			els, err := xmltest.FindAll(v.Data, name)
			if err != nil {
				t.Fatal(err)
			}
			for _, el := range els {
				var j jingle.Jingle
				if err := xml.Unmarshal(el, &j); err != nil {
					t.Fatal(err)
				}
				m, err := rtp.MediaFromJingle(&j)
				if err != nil || len(m.Contents) == 0 {
					continue // raw-udp, a typo'd namespace, or no RTP content
				}
				checked++
				author := jingle.CreatorInitiator
				if j.Action == jingle.ActionSessionAccept || j.Action == jingle.ActionContentAccept {
					author = jingle.CreatorResponder
				}
				o := rtp.SDPOptions{Author: author, Offer: author == jingle.CreatorInitiator}
				back, text := viaSDP(t, m, o)
				if len(back.Contents) != len(m.Contents) {
					t.Fatalf("%s: %d contents back, want %d\n%s", v.File, len(back.Contents), len(m.Contents), text)
				}
				for i, want := range m.Contents {
					got := back.Contents[i]
					if got.Name != want.Name || (got.Senders != want.Senders && !(want.Senders == "" && got.Senders == jingle.SendersBoth)) {
						t.Errorf("%s: content %q senders %q, back %q senders %q", v.File, want.Name, want.Senders, got.Name, got.Senders)
					}
					if ok, diff := xmltest.Equal(xmlOf(t, canon(got.Description)), xmlOf(t, canon(want.Description))); !ok {
						t.Errorf("%s: content %q description: %s\nSDP:\n%s", v.File, want.Name, diff, text)
					}
					if want.Transport == nil {
						continue
					}
					wt, gt := *want.Transport, *got.Transport
					for k := range wt.Candidates {
						wt.Candidates[k].ID = ""
					}
					// SDP has no candidate id: the mapping makes a fresh
					// one, as XEP-0176 requires.
					gt.Candidates = slices.Clone(gt.Candidates)
					for k := range gt.Candidates {
						if gt.Candidates[k].ID == "" {
							t.Errorf("%s: content %q: candidate %d has no id", v.File, want.Name, k)
						}
						gt.Candidates[k].ID = ""
					}
					for k := range wt.Fingerprints {
						if wt.Fingerprints[k].Setup == "" {
							// The mapping fills in the default role.
							wt.Fingerprints[k].Setup = gt.Fingerprints[k].Setup
						}
						wt.Fingerprints[k].Value = strings.Join(strings.Fields(wt.Fingerprints[k].Value), "")
					}
					wt.Extra, wt.ExtraAttrs = nil, nil
					if ok, diff := xmltest.Equal(xmlOf(t, gt), xmlOf(t, wt)); !ok {
						t.Errorf("%s: content %q transport: %s", v.File, want.Name, diff)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked %d <jingle/> elements, want at least 10", checked)
	}
}

// readSDPLines reads the attribute lines of an SDP fragment file.
func readSDPLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, strings.TrimSpace(sc.Text()))
	}
	return out
}

// TestSDPFragment0294: XEP-0294's SDP fragment (example 4) maps to the
// description of example 5. XEP-0294 maps extmap's recvonly to
// senders='initiator', which holds when the fragment is the responder's.
func TestSDPFragment0294(t *testing.T) {
	dir := filepath.Join(xmltest.SharedDir(t), "testdata", "xep", "xep-0294")
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "video", Port: sdp.RangedPort{Value: 9}, Protos: []string{"RTP", "AVP"}}}
	for _, l := range readSDPLines(t, filepath.Join(dir, "ex04.txt")) {
		if a, ok := strings.CutPrefix(l, "a="); ok {
			k, v, _ := strings.Cut(a, ":")
			md.Attributes = append(md.Attributes, sdp.Attribute{Key: k, Value: v})
		}
	}
	m, err := rtp.FromSDP(&sdp.SessionDescription{MediaDescriptions: []*sdp.MediaDescription{md}},
		rtp.SDPOptions{Author: jingle.CreatorResponder})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "ex05.xml"))
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, xmlOf(t, m.Contents[0].Description), want)
}

// TestSDPFragment0293: XEP-0293's SDP (example 4) gives the feedback of
// example 5: a=rtcp-fb:* at the description, a=rtcp-fb:98 and trr-int in
// payload type 98.
func TestSDPFragment0293(t *testing.T) {
	dir := filepath.Join(xmltest.SharedDir(t), "testdata", "xep", "xep-0293")
	var text strings.Builder
	for _, l := range readSDPLines(t, filepath.Join(dir, "ex04.txt")) {
		text.WriteString(l + "\r\n")
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(text.String())); err != nil {
		t.Fatal(err)
	}
	m, err := rtp.FromSDP(&sd, rtp.SDPOptions{Author: jingle.CreatorInitiator})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Contents) != 2 {
		t.Fatalf("%d contents", len(m.Contents))
	}
	video := m.Contents[1].Description
	if len(video.RTCPFB) != 1 || video.RTCPFB[0].Type != "nack" || video.RTCPFB[0].Subtype != "" {
		t.Errorf("description-level feedback %+v", video.RTCPFB)
	}
	p := video.PayloadTypes[0]
	if p.ID != 98 || len(p.RTCPFB) != 1 || p.RTCPFB[0].Subtype != "rpsi" || p.TrrInt == nil || p.TrrInt.Value != 100 {
		t.Errorf("payload type 98: %+v", p)
	}
	if m.Contents[0].Description.PayloadTypes[0].Name != "PCMU" {
		t.Errorf("audio: %+v", m.Contents[0].Description)
	}
}

// The SDP and Jingle of XEP-0339's example and XEP-0338's BUNDLE group
// (in the XEP text, not among the vectors).
const (
	sdp0339 = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE webcam\r\n" +
		"m=video 1 RTP/SAVPF 100\r\na=mid:webcam\r\na=rtpmap:100 VP8/90000\r\n" +
		"a=ssrc-group:FID 2301230316 386328120\r\na=ssrc:2301230316 cname:T5qvrIZj42v//eYQ\r\n" +
		"a=ssrc:386328120 cname:uEYgNtStZyTF74sM\r\na=ssrc-group:FID 3139499595 2613715171\r\n" +
		"a=ssrc:3139499595 cname:re8jhxkly9bxzuxr\r\na=ssrc:2613715171 cname:f83avsiw6n1m7vi\r\n"
	desc0339 = `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>
    <payload-type id='100' name='VP8' clockrate='90000'/>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>
      <source ssrc='2301230316'/>
      <source ssrc='386328120'/>
    </ssrc-group>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>
      <source ssrc='3139499595'/>
      <source ssrc='2613715171'/>
    </ssrc-group>
    <source ssrc='2301230316' xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'>
      <parameter name='cname' value='T5qvrIZj42v//eYQ'/>
    </source>
    <source ssrc='386328120' xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'>
      <parameter name='cname' value='uEYgNtStZyTF74sM'/>
    </source>
    <source ssrc='3139499595' xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'>
      <parameter name='cname' value='re8jhxkly9bxzuxr'/>
    </source>
    <source ssrc='2613715171' xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'>
      <parameter name='cname' value='f83avsiw6n1m7vi'/>
    </source>
  </description>`
	group0338 = `<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='webcam'/></group>`
)

// TestSDPSources: XEP-0339's example SDP maps to its Jingle, both
// ways, and the BUNDLE line to XEP-0338's <group/>.
func TestSDPSources(t *testing.T) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(sdp0339)); err != nil {
		t.Fatal(err)
	}
	m, err := rtp.FromSDP(&sd, rtp.SDPOptions{Author: jingle.CreatorInitiator})
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, xmlOf(t, m.Contents[0].Description), []byte(desc0339))
	if len(m.Groups) != 1 {
		t.Fatalf("groups %+v", m.Groups)
	}
	xmltest.AssertEqual(t, xmlOf(t, m.Groups[0]), []byte(group0338))
	var d rtp.Description
	if err := xml.Unmarshal([]byte(desc0339), &d); err != nil {
		t.Fatal(err)
	}
	back, text := viaSDP(t, rtp.Media{Contents: []rtp.Content{{Name: "webcam", Description: d}}, Groups: m.Groups},
		rtp.SDPOptions{Author: jingle.CreatorInitiator})
	xmltest.AssertEqual(t, xmlOf(t, back.Contents[0].Description), []byte(desc0339))
	if !strings.Contains(text, "a=ssrc-group:FID 2301230316 386328120") || !strings.Contains(text, "a=group:BUNDLE webcam") {
		t.Errorf("SDP:\n%s", text)
	}
}

// jingleRoundTrip sends m through XML as a peer would receive it.
func jingleRoundTrip(t *testing.T, m rtp.Media) rtp.Media {
	t.Helper()
	j := jingle.Jingle{Action: jingle.ActionSessionInitiate, SID: "x", Contents: m.JingleContents(), Info: m.GroupElements()}
	b := xmlOf(t, j)
	var back jingle.Jingle
	if err := xml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	out, err := rtp.MediaFromJingle(&back)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toPion maps Jingle to SDP for pion.
func toPion(t *testing.T, m rtp.Media, o rtp.SDPOptions, typ webrtc.SDPType) webrtc.SessionDescription {
	t.Helper()
	sd, err := rtp.ToSDP(m, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return webrtc.SessionDescription{Type: typ, SDP: string(b)}
}

func fromPion(t *testing.T, d *webrtc.SessionDescription, o rtp.SDPOptions) rtp.Media {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(d.SDP)); err != nil {
		t.Fatal(err)
	}
	m, err := rtp.FromSDP(&sd, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSDPPion: a real offer of pion's default codecs (audio and video with
// tracks) goes SDP → Jingle → XML → Jingle → SDP, and another pion takes
// it as remote offer; its answer travels back the same way and the first
// pion takes it. What pion says about codecs, sources, candidates and
// fingerprints survives.
func TestSDPPion(t *testing.T) {
	offerer, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer offerer.Close()
	answerer, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer answerer.Close()
	for _, pc := range []*webrtc.PeerConnection{offerer, answerer} {
		for _, c := range []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeOpus}, {MimeType: webrtc.MimeTypeVP8}} {
			tr, err := webrtc.NewTrackLocalStaticSample(c, strings.TrimPrefix(c.MimeType, "audio/"), "s")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.AddTrack(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	oo := rtp.SDPOptions{Author: jingle.CreatorInitiator, Offer: true}
	m := fromPion(t, offerer.LocalDescription(), oo)
	if len(m.Contents) != 2 || len(m.Groups) != 1 || m.Groups[0].Semantics != "BUNDLE" {
		t.Fatalf("offer in Jingle: %+v", m)
	}
	for _, c := range m.Contents {
		if len(c.Transport.Fingerprints) == 0 || c.Transport.Ufrag == "" || len(c.Description.PayloadTypes) == 0 || len(c.Description.Sources) == 0 {
			t.Errorf("content %q lacks something: %+v", c.Name, c)
		}
	}
	m2 := jingleRoundTrip(t, m)
	again := fromPion(t, &webrtc.SessionDescription{SDP: toPion(t, m2, oo, webrtc.SDPTypeOffer).SDP}, oo)
	for i := range m.Contents {
		if ok, diff := xmltest.Equal(xmlOf(t, canon(again.Contents[i].Description)), xmlOf(t, canon(m.Contents[i].Description))); !ok {
			t.Errorf("content %d description changed through Jingle and back: %s", i, diff)
		}
		if a, b := len(again.Contents[i].Transport.Candidates), len(m.Contents[i].Transport.Candidates); a != b {
			t.Errorf("content %d: %d candidates, was %d", i, a, b)
		}
	}
	if err := answerer.SetRemoteDescription(toPion(t, m2, oo, webrtc.SDPTypeOffer)); err != nil {
		t.Fatalf("pion refused the offer: %v", err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	ao := rtp.SDPOptions{Author: jingle.CreatorResponder}
	am := jingleRoundTrip(t, fromPion(t, answerer.LocalDescription(), ao))
	if err := offerer.SetRemoteDescription(toPion(t, am, ao, webrtc.SDPTypeAnswer)); err != nil {
		t.Fatalf("pion refused the answer: %v", err)
	}
	for _, c := range am.Contents {
		if s := c.Transport.Fingerprints[0].Setup; s != ice.SetupActive && s != ice.SetupPassive {
			t.Errorf("answer's setup %q", s)
		}
	}
}

// TestSDPHostile: malformed input gives an error, never a panic; bad
// candidates are left out of the SDP.
func TestSDPHostile(t *testing.T) {
	for _, c := range []struct{ name, xml string }{
		{"payload id out of range", `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='300'/></description>`},
		{"payload without id", `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type name='x'/></description>`},
		{"negative clockrate", `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='1' clockrate='-1'/></description>`},
		{"ssrc not a number", `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='x'/></description>`},
		{"hdrext id too big", `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='70000' uri='u'/></description>`},
	} {
		var d rtp.Description
		if err := xml.Unmarshal([]byte(c.xml), &d); err == nil {
			t.Errorf("%s: decoded", c.name)
		}
	}
	for _, line := range []string{
		"a=rtpmap:abc opus/48000", "a=rtpmap:111 opus/x", "a=rtcp-fb:111", "a=rtcp-fb:* trr-int x",
		"a=extmap:x uri", "a=extmap:1", "a=ssrc:x cname:y", "a=ssrc-group:FID x", "a=fingerprint:sha-256",
		"a=candidate:1 1 udp 1 example.com 1 typ host", "a=candidate:1 1 udp 1 1.2.3.4 99999 typ host", "a=crypto:1",
		"a=ptime:x",
	} {
		text := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + line + "\r\n"
		var sd sdp.SessionDescription
		if err := sd.Unmarshal([]byte(text)); err != nil {
			continue // pion's parser refused it already
		}
		if _, err := rtp.FromSDP(&sd, rtp.SDPOptions{}); err == nil {
			t.Errorf("%s: mapped", line)
		}
	}
	bad := rtp.Media{Contents: []rtp.Content{{Name: "0", Description: rtp.Description{Media: "audio",
		PayloadTypes: []rtp.PayloadType{{ID: 111, Name: "opus", ClockRate: 48000}}},
		Transport: &ice.Transport{Ufrag: "u", Pwd: "p", Candidates: []ice.Candidate{
			{Component: "1", Foundation: "1", IP: "evil.example", Port: "1", Priority: "1", Protocol: "udp", Type: "host"},
			{Component: "1", Foundation: "1", IP: "10.0.0.1", Port: "0", Priority: "1", Protocol: "udp", Type: "host"},
			{Component: "1", Foundation: "1 x", IP: "10.0.0.1", Port: "5", Priority: "1", Protocol: "udp", Type: "host"},
			{Component: "1", Foundation: "1", IP: "10.0.0.1", Port: "5", Priority: "1", Protocol: "tcp", Type: "host"},
			{Component: "1", Foundation: "1", IP: "10.0.0.2", Port: "5", Priority: "1", Protocol: "udp", Type: "host"},
		}}}}}
	sd, err := rtp.ToSDP(bad, rtp.SDPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := sd.Marshal()
	if n := bytes.Count(text, []byte("a=candidate:")); n != 1 || !bytes.Contains(text, []byte("10.0.0.2")) {
		t.Errorf("%d candidates in\n%s", n, text)
	}
}
