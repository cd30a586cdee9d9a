package rtp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// Content is one RTP content in Jingle form: a description and its ICE-UDP
// transport (with the DTLS fingerprint of XEP-0320). It is one SDP m=
// section; its name is the section's mid.
type Content struct {
	Name        string
	Creator     jingle.Creator
	Senders     jingle.Senders
	Description Description
	// Transport is nil for a content without transport (description-info).
	Transport *ice.Transport
}

// Media is the Jingle form of an SDP session description: the RTP
// contents and the session-level groups (XEP-0338).
type Media struct {
	Contents []Content
	Groups   []Group
}

// ErrSDP is wrapped by errors of the SDP mapping.
var ErrSDP = errors.New("rtp: cannot map SDP")

// SDPOptions say whose description is mapped.
type SDPOptions struct {
	// Author is the role (initiator or responder) of the party whose
	// description it is: SDP directions are the author's, Jingle senders
	// name roles.
	Author jingle.Creator
	// Offer is true for an offer (session-initiate, content-add), false for
	// an answer; it decides the DTLS setup role when a fingerprint has none
	// (actpass in an offer, active in an answer).
	Offer bool
	// SessionID and SessionVersion go into the SDP origin line; zero picks
	// a random id and version 1.
	SessionID, SessionVersion uint64
}

func (o SDPOptions) other() jingle.Creator {
	if o.Author == jingle.CreatorResponder {
		return jingle.CreatorInitiator
	}
	return jingle.CreatorResponder
}

// sendersToDirection maps Jingle senders to the author's SDP direction.
func sendersToDirection(s jingle.Senders, o SDPOptions) string {
	switch s {
	case "", jingle.SendersBoth:
		return "sendrecv"
	case jingle.SendersNone:
		return "inactive"
	}
	if jingle.Creator(s) == o.Author || (o.Author == "" && s == jingle.SendersInitiator) {
		return "sendonly"
	}
	return "recvonly"
}

// directionToSenders maps the author's SDP direction to Jingle senders;
// "" for no direction attribute (the default, both).
func directionToSenders(dir string, o SDPOptions) jingle.Senders {
	author := o.Author
	if author == "" {
		author = jingle.CreatorInitiator
	}
	switch dir {
	case "sendonly":
		return jingle.Senders(author)
	case "recvonly":
		return jingle.Senders(o.other())
	case "inactive":
		return jingle.SendersNone
	case "sendrecv":
		return jingle.SendersBoth
	}
	return ""
}

var directions = []string{"sendrecv", "sendonly", "recvonly", "inactive"}

// FromSDP maps an SDP session description to Jingle. Audio and video m=
// sections become contents (other media, such as data channels, are
// skipped); the session-level fingerprint, ICE credentials and
// extmap-allow-mixed are copied into each content.
func FromSDP(sd *sdp.SessionDescription, o SDPOptions) (Media, error) {
	var m Media
	var sessFP []ice.Fingerprint
	var sessUfrag, sessPwd, sessSetup string
	sessMixed := false
	for _, a := range sd.Attributes {
		switch a.Key {
		case "group":
			f := strings.Fields(a.Value)
			if len(f) == 0 {
				continue
			}
			g := Group{Semantics: f[0]}
			for _, n := range f[1:] {
				g.Contents = append(g.Contents, GroupContent{Name: n})
			}
			m.Groups = append(m.Groups, g)
		case "fingerprint":
			fp, err := parseFingerprint(a.Value)
			if err != nil {
				return Media{}, err
			}
			sessFP = append(sessFP, fp)
		case "ice-ufrag":
			sessUfrag = a.Value
		case "ice-pwd":
			sessPwd = a.Value
		case "setup":
			sessSetup = a.Value
		case "extmap-allow-mixed":
			sessMixed = true
		}
	}
	for i, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if kind != MediaAudio && kind != MediaVideo {
			continue
		}
		c, setup, err := contentFromSDP(md, i, o)
		if err != nil {
			return Media{}, err
		}
		c.Description.ExtmapAllowMixed = c.Description.ExtmapAllowMixed || sessMixed
		t := c.Transport
		if t.Ufrag == "" {
			t.Ufrag = sessUfrag
		}
		if t.Pwd == "" {
			t.Pwd = sessPwd
		}
		if len(t.Fingerprints) == 0 {
			t.Fingerprints = slices.Clone(sessFP)
		}
		if setup == "" {
			setup = sessSetup
		}
		for k := range t.Fingerprints {
			if t.Fingerprints[k].Setup == "" {
				t.Fingerprints[k].Setup = ice.Setup(setup)
			}
		}
		m.Contents = append(m.Contents, c)
	}
	return m, nil
}

func parseFingerprint(v string) (ice.Fingerprint, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return ice.Fingerprint{}, fmt.Errorf("%w: fingerprint %q", ErrSDP, v)
	}
	return ice.Fingerprint{Hash: strings.ToLower(f[0]), Value: f[1]}, nil
}

// contentFromSDP maps one m= section.
func contentFromSDP(md *sdp.MediaDescription, index int, o SDPOptions) (Content, string, error) {
	r := &mediaReader{o: o, pts: map[uint8]*PayloadType{}, srcIndex: map[uint32]int{},
		d: Description{Media: md.MediaName.Media}, c: Content{Creator: o.Author, Transport: &ice.Transport{}}}
	d, c := &r.d, &r.c
	if c.Creator == "" {
		c.Creator = jingle.CreatorInitiator
	}
	for _, f := range md.MediaName.Formats {
		id, err := strconv.ParseUint(f, 10, 8)
		if err != nil {
			return Content{}, "", fmt.Errorf("%w: format %q", ErrSDP, f)
		}
		d.PayloadTypes = append(d.PayloadTypes, PayloadType{ID: uint8(id)})
	}
	for i := range d.PayloadTypes {
		r.pts[d.PayloadTypes[i].ID] = &d.PayloadTypes[i]
	}
	for _, b := range md.Bandwidth {
		typ := b.Type
		if b.Experimental {
			typ = "X-" + typ
		}
		d.Bandwidth = append(d.Bandwidth, Bandwidth{Type: typ, Value: strconv.FormatUint(b.Bandwidth, 10)})
	}
	for _, a := range md.Attributes {
		var err error
		switch a.Key {
		case "mid", "ice-ufrag", "ice-pwd", "fingerprint", "setup", "candidate":
			err = r.transportAttr(a.Key, a.Value)
		case "sendrecv", "sendonly", "recvonly", "inactive":
			r.c.Senders = directionToSenders(a.Key, o)
		case "rtcp-mux":
			r.d.RTCPMux = true
		case "extmap-allow-mixed":
			r.d.ExtmapAllowMixed = true
		case "rtpmap", "fmtp", "ptime", "maxptime":
			err = r.payloadAttr(a.Key, a.Value)
		case "rtcp-fb", "extmap":
			err = r.feedbackAttr(a.Key, a.Value)
		case "ssrc", "ssrc-group", "msid", "crypto":
			err = r.sourceAttr(a.Key, a.Value)
		}
		if err != nil {
			return Content{}, "", err
		}
	}
	if c.Name == "" {
		c.Name = strconv.Itoa(index)
	}
	for i := range d.PayloadTypes {
		d.PayloadTypes[i].PTime = r.ptime
		d.PayloadTypes[i].MaxPTime = r.maxptime
	}
	// A media-level msid names the track of the section's sources; XEP-0339
	// carries it as a source parameter. Add it where the sources lack it.
	for _, ms := range r.msids {
		for i := range d.Sources {
			if _, ok := d.Sources[i].Param("msid"); !ok {
				d.Sources[i].Parameters = append(d.Sources[i].Parameters, Parameter{Name: "msid", Value: ms})
			}
		}
	}
	for k := range c.Transport.Fingerprints {
		c.Transport.Fingerprints[k].Setup = ice.Setup(r.setup)
	}
	c.Description = *d
	return *c, r.setup, nil
}

// mediaReader is the state of contentFromSDP while it reads one m=
// section's attributes, one group of attributes per method.
type mediaReader struct {
	o               SDPOptions
	c               Content
	d               Description
	pts             map[uint8]*PayloadType
	ptime, maxptime uint32
	setup           string
	msids           []string
	srcIndex        map[uint32]int
}

// pt returns the payload type an attribute names, or nil for a format not
// in the m= line.
func (r *mediaReader) pt(s string) (*PayloadType, error) {
	id, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return nil, fmt.Errorf("%w: payload type %q", ErrSDP, s)
	}
	p, ok := r.pts[uint8(id)]
	if !ok {
		return nil, nil // an attribute for a format not in the m= line
	}
	return p, nil
}

// transportAttr reads the attributes of the ICE-UDP transport: mid, ICE credentials, DTLS fingerprint and setup, candidates.
func (r *mediaReader) transportAttr(key, v string) error {
	switch key {
	case "mid":
		r.c.Name = v
	case "ice-ufrag":
		r.c.Transport.Ufrag = v
	case "ice-pwd":
		r.c.Transport.Pwd = v
	case "fingerprint":
		fp, err := parseFingerprint(v)
		if err != nil {
			return err
		}
		r.c.Transport.Fingerprints = append(r.c.Transport.Fingerprints, fp)
	case "setup":
		r.setup = v
	case "candidate":
		cand, err := CandidateFromSDP(v)
		if err != nil {
			return err
		}
		r.c.Transport.Candidates = append(r.c.Transport.Candidates, cand)
	}
	return nil
}

// payloadAttr reads the attributes of the payload types: rtpmap, fmtp, ptime and maxptime.
func (r *mediaReader) payloadAttr(key, v string) error {
	switch key {
	case "rtpmap":
		id, rest, _ := strings.Cut(v, " ")
		p, err := r.pt(id)
		if err != nil {
			return err
		}
		if p == nil {
			return nil
		}
		parts := strings.Split(strings.TrimSpace(rest), "/")
		p.Name = parts[0]
		if len(parts) > 1 {
			rate, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil {
				return fmt.Errorf("%w: rtpmap %q", ErrSDP, v)
			}
			p.ClockRate = uint32(rate)
		}
		if len(parts) > 2 {
			ch, err := strconv.ParseUint(parts[2], 10, 8)
			if err != nil {
				return fmt.Errorf("%w: rtpmap %q", ErrSDP, v)
			}
			p.Channels = uint8(ch)
		}
	case "fmtp":
		id, rest, _ := strings.Cut(v, " ")
		p, err := r.pt(id)
		if err != nil {
			return err
		}
		if p == nil {
			return nil
		}
		for _, kv := range strings.Split(rest, ";") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, val, _ := strings.Cut(kv, "=")
			p.Parameters = append(p.Parameters, Parameter{Name: k, Value: val})
		}
	case "ptime", "maxptime":
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return fmt.Errorf("%w: %s %q", ErrSDP, key, v)
		}
		if key == "ptime" {
			r.ptime = uint32(n)
		} else {
			r.maxptime = uint32(n)
		}
	}
	return nil
}

// feedbackAttr reads rtcp-fb (XEP-0293) and extmap (XEP-0294).
func (r *mediaReader) feedbackAttr(key, v string) error {
	switch key {
	case "rtcp-fb":
		id, rest, _ := strings.Cut(v, " ")
		f := strings.Fields(rest)
		if len(f) == 0 {
			return fmt.Errorf("%w: rtcp-fb %q", ErrSDP, v)
		}
		var trr *TrrInt
		var fb *RTCPFB
		if f[0] == "trr-int" {
			if len(f) < 2 {
				return fmt.Errorf("%w: rtcp-fb %q", ErrSDP, v)
			}
			n, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return fmt.Errorf("%w: rtcp-fb %q", ErrSDP, v)
			}
			trr = &TrrInt{Value: uint32(n)}
		} else {
			fb = &RTCPFB{Type: f[0]}
			if len(f) > 1 {
				fb.Subtype = f[1]
			}
			for _, x := range f[min(2, len(f)):] {
				fb.Parameters = append(fb.Parameters, Parameter{Name: x})
			}
		}
		if id == "*" {
			if trr != nil {
				r.d.TrrInt = trr
			} else {
				r.d.RTCPFB = append(r.d.RTCPFB, *fb)
			}
			return nil
		}
		p, err := r.pt(id)
		if err != nil {
			return err
		}
		if p == nil {
			return nil
		}
		if trr != nil {
			p.TrrInt = trr
		} else {
			p.RTCPFB = append(p.RTCPFB, *fb)
		}
	case "extmap":
		f := strings.Fields(v)
		if len(f) < 2 {
			return fmt.Errorf("%w: extmap %q", ErrSDP, v)
		}
		idStr, dir, _ := strings.Cut(f[0], "/")
		id, err := strconv.ParseUint(idStr, 10, 16)
		if err != nil {
			return fmt.Errorf("%w: extmap %q", ErrSDP, v)
		}
		h := HdrExt{ID: uint16(id), URI: f[1]}
		if dir != "" {
			h.Senders = directionToSenders(dir, r.o)
		}
		for _, x := range f[2:] {
			h.Parameters = append(h.Parameters, Parameter{Name: x})
		}
		r.d.HdrExts = append(r.d.HdrExts, h)
	}
	return nil
}

// sourceAttr reads the attributes of the sources (XEP-0339): ssrc, ssrc-group, msid; and crypto.
func (r *mediaReader) sourceAttr(key, v string) error {
	switch key {
	case "ssrc":
		idStr, rest, _ := strings.Cut(v, " ")
		id, err := strconv.ParseUint(idStr, 10, 32)
		if err != nil {
			return fmt.Errorf("%w: ssrc %q", ErrSDP, v)
		}
		i, ok := r.srcIndex[uint32(id)]
		if !ok {
			i = len(r.d.Sources)
			r.srcIndex[uint32(id)] = i
			r.d.Sources = append(r.d.Sources, Source{SSRC: uint32(id)})
		}
		if rest = strings.TrimSpace(rest); rest != "" {
			name, val, _ := strings.Cut(rest, ":")
			r.d.Sources[i].Parameters = append(r.d.Sources[i].Parameters, Parameter{Name: name, Value: val})
		}
	case "ssrc-group":
		f := strings.Fields(v)
		if len(f) == 0 {
			return fmt.Errorf("%w: ssrc-group %q", ErrSDP, v)
		}
		g := SSRCGroup{Semantics: f[0]}
		for _, x := range f[1:] {
			id, err := strconv.ParseUint(x, 10, 32)
			if err != nil {
				return fmt.Errorf("%w: ssrc-group %q", ErrSDP, v)
			}
			g.Sources = append(g.Sources, SSRCRef{SSRC: uint32(id)})
		}
		r.d.SSRCGroups = append(r.d.SSRCGroups, g)
	case "msid":
		r.msids = append(r.msids, v)
	case "crypto":
		f := strings.Fields(v)
		if len(f) < 3 {
			return fmt.Errorf("%w: crypto %q", ErrSDP, v)
		}
		if r.d.Encryption == nil {
			r.d.Encryption = &Encryption{}
		}
		cr := Crypto{Tag: f[0], CryptoSuite: f[1], KeyParams: f[2]}
		if len(f) > 3 {
			cr.SessionParams = strings.Join(f[3:], " ")
		}
		r.d.Encryption.Crypto = append(r.d.Encryption.Crypto, cr)
	}
	return nil
}

// CandidateFromSDP maps the value of an SDP a=candidate attribute (with or
// without the "candidate:" prefix) to an XEP-0176 candidate. It checks the
// candidate as ice.Candidate.Parse does.
func CandidateFromSDP(v string) (ice.Candidate, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "candidate:")
	f := strings.Fields(v)
	if len(f) < 8 || f[6] != "typ" {
		return ice.Candidate{}, fmt.Errorf("%w: candidate %q", ErrSDP, v)
	}
	c := ice.Candidate{
		Foundation: f[0], Component: f[1], Protocol: strings.ToLower(f[2]), Priority: f[3],
		IP: f[4], Port: f[5], Type: f[7], Generation: "0", Network: "0",
		// SDP has no candidate id; XEP-0176 requires one.
		ID: ice.NewCandidateID(),
	}
	for i := 8; i+1 < len(f); i += 2 {
		switch f[i] {
		case "raddr":
			c.RelAddr = f[i+1]
		case "rport":
			c.RelPort = f[i+1]
		case "generation":
			c.Generation = f[i+1]
		case "network-id":
			c.Network = f[i+1]
		case "tcptype":
			c.TCPType = f[i+1]
		}
	}
	if _, err := c.Parse(); err != nil {
		return ice.Candidate{}, err
	}
	return c, nil
}

// CandidateToSDP returns the value of an SDP a=candidate attribute (without
// the "candidate:" prefix) for an XEP-0176 candidate, after checking it
// with ice.Candidate.Parse: a candidate that does not parse is refused.
func CandidateToSDP(c ice.Candidate) (string, error) {
	pc, err := c.Parse()
	if err != nil {
		return "", err
	}
	s := pc.Marshal()
	if c.Generation != "" {
		s += " generation " + c.Generation
	}
	if c.Network != "" {
		s += " network-id " + c.Network
	}
	return s, nil
}

// randomUint63 returns a random positive 63-bit number for SDP origins.
func randomUint63() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 1
}

// ToSDP maps Jingle contents to an SDP session description, such as pion
// takes as a remote description. Candidates that do not parse are left
// out; a content whose transport has no fingerprint is mapped to
// RTP/AVPF (pion refuses it, as DTLS-SRTP requires).
func ToSDP(m Media, o SDPOptions) (*sdp.SessionDescription, error) {
	id, ver := o.SessionID, o.SessionVersion
	if id == 0 {
		id = randomUint63()
	}
	if ver == 0 {
		ver = 1
	}
	sd := &sdp.SessionDescription{
		Version: 0,
		Origin: sdp.Origin{Username: "-", SessionID: id, SessionVersion: ver,
			NetworkType: "IN", AddressType: "IP4", UnicastAddress: "0.0.0.0"},
		SessionName:      "-",
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
	for _, g := range m.Groups {
		sd.Attributes = append(sd.Attributes, sdp.Attribute{Key: "group",
			Value: strings.Join(append([]string{g.Semantics}, g.Names()...), " ")})
	}
	sd.Attributes = append(sd.Attributes, sdp.Attribute{Key: "msid-semantic", Value: " WMS *"})
	for _, c := range m.Contents {
		md, err := contentToSDP(c, o)
		if err != nil {
			return nil, err
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	if err := checkSDPText(sd); err != nil {
		return nil, err
	}
	return sd, nil
}

// checkSDPText refuses SDP that a peer's values would make malformed or
// extend: a line break or NUL in a value would add lines of the peer's
// choosing to what WebRTC reads (RFC 8866 §9: byte-string excludes them),
// and an attribute name must be a token.
func checkSDPText(sd *sdp.SessionDescription) error {
	attrs := slices.Clone(sd.Attributes)
	for _, md := range sd.MediaDescriptions {
		attrs = append(attrs, md.Attributes...)
		for _, f := range md.MediaName.Formats {
			if !isSDPToken(f) {
				return fmt.Errorf("%w: format %q", ErrSDP, f)
			}
		}
		for _, b := range md.Bandwidth {
			if !isSDPToken(b.Type) {
				return fmt.Errorf("%w: bandwidth type %q", ErrSDP, b.Type)
			}
		}
	}
	for _, a := range attrs {
		if !isSDPToken(a.Key) || strings.ContainsAny(a.Value, "\r\n\x00") {
			return fmt.Errorf("%w: attribute %q:%q", ErrSDP, a.Key, a.Value)
		}
	}
	return nil
}

// oneSDPField reports whether s is one non-empty whitespace-separated
// field of an attribute value, so that a value left out when it is not
// one does not change what the others mean. A value holding a line break
// counts as one: it is written, and checkSDPText refuses the whole
// description, as it does for any value that would add lines.
func oneSDPField(s string) bool {
	if strings.ContainsAny(s, "\r\n") {
		return true
	}
	f := strings.Fields(s)
	return len(f) == 1 && f[0] == s
}

// isSDPToken reports whether s is an RFC 8866 token.
func isSDPToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func contentToSDP(c Content, o SDPOptions) (*sdp.MediaDescription, error) {
	d := c.Description
	if d.Media != "audio" && d.Media != "video" {
		// FromSDP reads audio and video only; pion refuses other names.
		return nil, fmt.Errorf("%w: content %q: media %q is not audio or video", ErrSDP, c.Name, d.Media)
	}
	proto := "UDP/TLS/RTP/SAVPF"
	if c.Transport == nil || len(sdpFingerprints(c.Transport)) == 0 {
		proto = "RTP/AVPF"
	}
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{Media: d.Media, Port: sdp.RangedPort{Value: 9}, Protos: strings.Split(proto, "/")},
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: "IP4",
			Address: &sdp.Address{Address: "0.0.0.0"}},
	}
	for _, p := range d.PayloadTypes {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(p.ID)))
	}
	if len(md.MediaName.Formats) == 0 {
		// An m= line needs a format; a content without payload types is
		// rejected (port 0).
		md.MediaName.Port.Value = 0
		md.MediaName.Formats = []string{"0"}
	}
	for _, b := range d.Bandwidth {
		n, err := strconv.ParseUint(strings.TrimSpace(b.Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: bandwidth %q", ErrSDP, b.Value)
		}
		typ, exp := b.Type, false
		if t, ok := strings.CutPrefix(typ, "X-"); ok {
			typ, exp = t, true
		}
		md.Bandwidth = append(md.Bandwidth, sdp.Bandwidth{Type: typ, Experimental: exp, Bandwidth: n})
	}
	attr := func(k, v string) { md.Attributes = append(md.Attributes, sdp.Attribute{Key: k, Value: v}) }
	attr("mid", c.Name)
	if c.Transport != nil {
		transportToSDP(attr, c.Transport, o)
	}
	attr(sendersToDirection(c.Senders, o), "")
	if d.RTCPMux {
		attr("rtcp-mux", "")
	}
	if d.ExtmapAllowMixed {
		attr("extmap-allow-mixed", "")
	}
	payloadTypesToSDP(attr, d)
	headerExtsToSDP(attr, d, o)
	sourcesToSDP(attr, d)
	return md, nil
}

// transportToSDP writes the attributes of an ICE-UDP transport: ICE
// credentials, DTLS fingerprints and setup, candidates.
func transportToSDP(attr func(k, v string), t *ice.Transport, o SDPOptions) {
	if t.Ufrag != "" {
		attr("ice-ufrag", t.Ufrag)
	}
	if t.Pwd != "" {
		attr("ice-pwd", t.Pwd)
	}
	setup := ""
	fps := sdpFingerprints(t)
	for _, fp := range fps {
		attr("fingerprint", fp.Hash+" "+strings.Join(strings.Fields(fp.Value), ""))
		if setup == "" {
			setup = string(fp.Setup)
		}
	}
	if len(fps) > 0 {
		if setup == "" {
			setup = string(ice.SetupActive)
			if o.Offer {
				setup = string(ice.SetupActPass)
			}
		}
		attr("setup", setup)
	}
	for _, cand := range t.Candidates {
		s, err := CandidateToSDP(cand)
		if err != nil {
			continue // XEP-0176: a candidate that cannot be used is skipped
		}
		attr("candidate", s)
	}
}

// sdpFingerprints returns the fingerprints a=fingerprint can carry: RFC
// 8122 needs a hash function (one field) and a fingerprint. A peer's
// <fingerprint/> without either is left out, not written as an
// a=fingerprint that neither pion nor FromSDP reads.
func sdpFingerprints(t *ice.Transport) []ice.Fingerprint {
	var out []ice.Fingerprint
	for _, fp := range t.Fingerprints {
		if oneSDPField(fp.Hash) && len(strings.Fields(fp.Value)) > 0 {
			out = append(out, fp)
		}
	}
	return out
}

// payloadTypesToSDP writes rtpmap, fmtp, rtcp-fb (XEP-0293), ptime and
// maxptime.
func payloadTypesToSDP(attr func(k, v string), d Description) {
	var ptime, maxptime uint32
	for _, p := range d.PayloadTypes {
		enc := fmt.Sprintf("%d %s/%d", p.ID, p.Name, p.ClockRate)
		if p.Channels > 1 {
			enc += fmt.Sprintf("/%d", p.Channels)
		}
		if oneSDPField(p.Name) && !strings.Contains(p.Name, "/") {
			// RFC 8866's rtpmap is <encoding name>/<clock rate>: a name
			// with a slash or a space cannot be written.
			attr("rtpmap", enc)
		}
		if len(p.Parameters) > 0 {
			var kv []string
			for _, x := range p.Parameters {
				if x.Value == "" {
					kv = append(kv, x.Name)
				} else {
					kv = append(kv, x.Name+"="+x.Value)
				}
			}
			attr("fmtp", fmt.Sprintf("%d %s", p.ID, strings.Join(kv, ";")))
		}
		for _, fb := range p.RTCPFB {
			if v, ok := rtcpFBValue(fb); ok {
				attr("rtcp-fb", strconv.Itoa(int(p.ID))+" "+v)
			}
		}
		if p.TrrInt != nil {
			attr("rtcp-fb", fmt.Sprintf("%d trr-int %d", p.ID, p.TrrInt.Value))
		}
		if ptime == 0 {
			ptime = p.PTime
		}
		if maxptime == 0 {
			maxptime = p.MaxPTime
		}
	}
	for _, fb := range d.RTCPFB {
		if v, ok := rtcpFBValue(fb); ok {
			attr("rtcp-fb", "* "+v)
		}
	}
	if d.TrrInt != nil {
		attr("rtcp-fb", fmt.Sprintf("* trr-int %d", d.TrrInt.Value))
	}
	if ptime != 0 {
		attr("ptime", strconv.FormatUint(uint64(ptime), 10))
	}
	if maxptime != 0 {
		attr("maxptime", strconv.FormatUint(uint64(maxptime), 10))
	}
}

// headerExtsToSDP writes extmap (XEP-0294).
func headerExtsToSDP(attr func(k, v string), d Description, o SDPOptions) {
	for _, h := range d.HdrExts {
		if !oneSDPField(h.URI) {
			continue // RFC 8285's extmap needs the URI, one field
		}
		id := strconv.Itoa(int(h.ID))
		if h.Senders != "" && h.Senders != jingle.SendersBoth {
			id += "/" + sendersToDirection(h.Senders, o)
		}
		v := id + " " + h.URI
		for _, x := range h.Parameters {
			if oneSDPField(x.Name) {
				v += " " + x.Name
			}
		}
		attr("extmap", v)
	}
}

// sourcesToSDP writes ssrc-group, ssrc and msid (XEP-0339), and crypto.
func sourcesToSDP(attr func(k, v string), d Description) {
	for _, g := range d.SSRCGroups {
		if !oneSDPField(g.Semantics) {
			continue // RFC 5576's ssrc-group starts with its semantics, one field
		}
		ids := []string{g.Semantics}
		for _, s := range g.Sources {
			ids = append(ids, strconv.FormatUint(uint64(s.SSRC), 10))
		}
		attr("ssrc-group", strings.Join(ids, " "))
	}
	var msids []string
	for _, s := range d.Sources {
		id := strconv.FormatUint(uint64(s.SSRC), 10)
		if len(s.Parameters) == 0 {
			attr("ssrc", id)
		}
		for _, x := range s.Parameters {
			if x.Value == "" {
				attr("ssrc", id+" "+x.Name)
			} else {
				attr("ssrc", id+" "+x.Name+":"+x.Value)
			}
			if x.Name == "msid" && !slices.Contains(msids, x.Value) {
				msids = append(msids, x.Value)
			}
		}
	}
	for _, ms := range msids {
		attr("msid", ms)
	}
	if e := d.Encryption; e != nil {
		for _, cr := range e.Crypto {
			if !oneSDPField(cr.Tag) || !oneSDPField(cr.CryptoSuite) || !oneSDPField(cr.KeyParams) {
				// RFC 4568's a=crypto needs all three, each one field;
				// a peer's incomplete <crypto/> is not ours to repeat.
				continue
			}
			v := cr.Tag + " " + cr.CryptoSuite + " " + cr.KeyParams
			if cr.SessionParams != "" {
				v += " " + cr.SessionParams
			}
			attr("crypto", v)
		}
	}
}

// rtcpFBValue returns an rtcp-fb value (after the payload type) for a
// XEP-0293 <rtcp-fb/>, and false when RFC 4585 cannot carry it: a type
// that is not one field, a subtype of more than one, or the type
// trr-int, which SDP reads as <rtcp-fb-trr-int/> and needs a number.
func rtcpFBValue(fb RTCPFB) (string, bool) {
	if !oneSDPField(fb.Type) || fb.Type == "trr-int" || (fb.Subtype != "" && !oneSDPField(fb.Subtype)) {
		return "", false
	}
	v := fb.Type
	if fb.Subtype != "" {
		v += " " + fb.Subtype
	}
	for _, x := range fb.Parameters {
		if oneSDPField(x.Name) {
			v += " " + x.Name
		}
	}
	return v, true
}

// JingleContents returns the contents as jingle.Content values, with their
// description and transport elements.
func (m Media) JingleContents() []jingle.Content {
	out := make([]jingle.Content, 0, len(m.Contents))
	for _, c := range m.Contents {
		desc := c.Description.Element()
		jc := jingle.Content{Creator: c.Creator, Name: c.Name, Senders: c.Senders, Description: &desc}
		if c.Transport != nil {
			el := jingle.MustElement(c.Transport)
			jc.Transport = &el
		}
		out = append(out, jc)
	}
	return out
}

// GroupElements returns the groups as <jingle/> children.
func (m Media) GroupElements() []jingle.Element {
	out := make([]jingle.Element, 0, len(m.Groups))
	for _, g := range m.Groups {
		out = append(out, jingle.MustElement(g))
	}
	return out
}

// MediaFromJingle reads the RTP contents and groups of a <jingle/>.
// Contents of other applications are skipped; an RTP description or ICE
// transport that does not decode is an error.
func MediaFromJingle(j *jingle.Jingle) (Media, error) {
	var m Media
	for _, el := range j.Info {
		if el.XMLName.Space == NSGrouping && el.XMLName.Local == "group" {
			var g Group
			if err := el.Decode(&g); err != nil {
				return Media{}, err
			}
			m.Groups = append(m.Groups, g)
		}
	}
	for _, jc := range j.Contents {
		if jc.Description == nil || jc.Description.Namespace() != NS {
			continue
		}
		c, err := ContentFromJingle(jc)
		if err != nil {
			return Media{}, err
		}
		m.Contents = append(m.Contents, c)
	}
	return m, nil
}

// ContentFromJingle decodes one RTP content.
func ContentFromJingle(jc jingle.Content) (Content, error) {
	c := Content{Name: jc.Name, Creator: jc.Key().Creator, Senders: jc.Senders}
	if jc.Description != nil {
		d, err := ParseDescription(*jc.Description)
		if err != nil {
			return Content{}, err
		}
		c.Description = d
	}
	if jc.Transport != nil {
		ns := jc.Transport.Namespace()
		if ns != ice.NSICEUDP && ns != ice.NSICE0 {
			return Content{}, fmt.Errorf("rtp: content %q: transport %s is not ICE-UDP", jc.Name, ns)
		}
		var t ice.Transport
		if err := jc.Transport.Decode(&t); err != nil {
			return Content{}, err
		}
		c.Transport = &t
	}
	return c, nil
}
