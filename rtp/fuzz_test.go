package rtp_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"github.com/pion/sdp/v3"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/rtp"
)

// rtpXEPs hold the <jingle/> examples with RTP contents.
var rtpXEPs = []string{"0167", "0176", "0293", "0294", "0320", "0338", "0339"}

var jingleName = xml.Name{Space: jingle.NS, Local: "jingle"}

// FuzzJingleToSDP maps a peer's <jingle/> to SDP, as a call does before
// handing it to WebRTC: no panic, and SDP we write must parse again and
// map back to as many contents.
func FuzzJingleToSDP(f *testing.F) {
	xmltest.SeedElements(f, jingleName, rtpXEPs...)
	f.Fuzz(func(t *testing.T, data []byte) {
		var j jingle.Jingle
		if xml.Unmarshal(data, &j) != nil {
			return
		}
		m, err := rtp.MediaFromJingle(&j)
		if err != nil || len(m.Contents) == 0 {
			return
		}
		o := rtp.SDPOptions{Author: jingle.CreatorInitiator, Offer: true}
		sd, err := rtp.ToSDP(m, o)
		if err != nil {
			return
		}
		text, err := sd.Marshal()
		if err != nil {
			t.Fatalf("SDP of %q does not marshal: %v", data, err)
		}
		var back sdp.SessionDescription
		if err := back.Unmarshal(text); err != nil {
			t.Fatalf("SDP we wrote for %q does not parse: %v\n%s", data, err, text)
		}
		m2, err := rtp.FromSDP(&back, o)
		if err != nil || len(m2.Contents) != len(m.Contents) {
			t.Fatalf("SDP we wrote for %q maps back to %d contents (want %d): %v\n%s", data, len(m2.Contents), len(m.Contents), err, text)
		}
	})
}

// FuzzSDPToJingle maps SDP to Jingle, as a call does with what WebRTC
// (or a peer's SDP) describes: no panic, and the <jingle/> we write must
// decode and map back to as many contents. Seeded with the SDP examples
// and the SDP of every RTP <jingle/> example.
func FuzzSDPToJingle(f *testing.F) {
	n := xmltest.SeedFiles(f, "0293", ".txt") + xmltest.SeedFiles(f, "0294", ".txt")
	for _, xep := range rtpXEPs {
		for _, v := range xmltest.Vectors(f, xep) {
			els, _ := xmltest.FindAll(v.Data, jingleName)
			for _, el := range els {
				var j jingle.Jingle
				if xml.Unmarshal(el, &j) != nil {
					continue
				}
				m, err := rtp.MediaFromJingle(&j)
				if err != nil || len(m.Contents) == 0 {
					continue
				}
				if sd, err := rtp.ToSDP(m, rtp.SDPOptions{Author: jingle.CreatorInitiator, Offer: true}); err == nil {
					if text, err := sd.Marshal(); err == nil {
						f.Add(text)
						n++
					}
				}
			}
		}
	}
	if n == 0 {
		f.Fatal("no SDP seed")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var sd sdp.SessionDescription
		if sd.Unmarshal(data) != nil {
			return
		}
		o := rtp.SDPOptions{Author: jingle.CreatorResponder}
		m, err := rtp.FromSDP(&sd, o)
		if err != nil || len(m.Contents) == 0 {
			return
		}
		j := jingle.Jingle{Action: jingle.ActionSessionAccept, SID: "s", Contents: m.JingleContents(), Info: m.GroupElements()}
		b, err := xml.Marshal(j)
		if err != nil {
			t.Fatalf("<jingle/> for %q does not encode: %v", data, err)
		}
		var back jingle.Jingle
		if err := xml.Unmarshal(b, &back); err != nil {
			t.Fatalf("<jingle/> we wrote for %q does not decode: %v\n%s", data, err, b)
		}
		m2, err := rtp.MediaFromJingle(&back)
		if err != nil || len(m2.Contents) != len(m.Contents) {
			t.Fatalf("<jingle/> we wrote for %q maps back to %d contents (want %d): %v\n%s", data, len(m2.Contents), len(m.Contents), err, b)
		}
	})
}

// TestToSDPRefusesInjection: a peer's value holding a line break would
// add SDP lines of its choosing to what WebRTC reads; a media name other
// than audio or video makes SDP pion refuses. Both are ErrSDP.
func TestToSDPRefusesInjection(t *testing.T) {
	o := rtp.SDPOptions{Author: jingle.CreatorInitiator, Offer: true}
	for name, d := range map[string]rtp.Description{
		"codec name": {Media: "audio", PayloadTypes: []rtp.PayloadType{{ID: 111, Name: "opus\r\na=injected", ClockRate: 48000}}},
		"parameter":  {Media: "audio", PayloadTypes: []rtp.PayloadType{{ID: 111, Name: "opus", ClockRate: 48000, Parameters: []rtp.Parameter{{Name: "x", Value: "1\na=injected"}}}}},
		"media":      {Media: "0", PayloadTypes: []rtp.PayloadType{{ID: 0, Name: "PCMU", ClockRate: 8000}}},
	} {
		_, err := rtp.ToSDP(rtp.Media{Contents: []rtp.Content{{Name: "a", Creator: jingle.CreatorInitiator, Description: d}}}, o)
		if !errors.Is(err, rtp.ErrSDP) {
			t.Errorf("%s: %v, want ErrSDP", name, err)
		}
	}
}
