package ice

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	pionice "github.com/pion/ice/v2"
)

// ErrBadCandidate is wrapped by the errors of Candidate.Parse.
var ErrBadCandidate = errors.New("ice: bad candidate")

// Candidate types of XEP-0176.
const (
	TypeHost  = "host"
	TypeSrflx = "srflx"
	TypePrflx = "prflx"
	TypeRelay = "relay"
)

// maxFoundation bounds the length of a foundation (RFC 8445 allows 32
// characters).
const maxFoundation = 32

// Parse checks a candidate the peer sent and turns it into a pion
// candidate. It accepts what XEP-0176 requires and what peers leave out
// (id, generation, network); it refuses anything it cannot use: a name or
// a malformed address instead of an IP, a port outside 1–65535, an unknown
// type, a protocol other than UDP (ICE-TCP is not supported), a component
// outside 1–255, a missing foundation or priority.
func (c Candidate) Parse() (pionice.Candidate, error) {
	bad := func(format string, args ...any) (pionice.Candidate, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadCandidate}, args...)...)
	}
	comp, err := strconv.ParseUint(c.Component, 10, 8)
	if err != nil || comp == 0 {
		return bad("component %q", c.Component)
	}
	if c.Foundation == "" || len(c.Foundation) > maxFoundation || strings.ContainsAny(c.Foundation, " \t\r\n") {
		return bad("foundation %q", c.Foundation)
	}
	ip := net.ParseIP(c.IP)
	if ip == nil || ip.IsUnspecified() || ip.IsMulticast() || ip.Equal(net.IPv4bcast) {
		return bad("ip %q", c.IP)
	}
	port, err := strconv.ParseUint(c.Port, 10, 16)
	if err != nil || port == 0 {
		return bad("port %q", c.Port)
	}
	prio, err := strconv.ParseUint(c.Priority, 10, 32)
	if err != nil || prio == 0 {
		return bad("priority %q", c.Priority)
	}
	if !strings.EqualFold(c.Protocol, "udp") {
		return bad("protocol %q", c.Protocol)
	}
	if c.Generation != "" {
		if _, err := strconv.ParseUint(c.Generation, 10, 8); err != nil {
			return bad("generation %q", c.Generation)
		}
	}
	var typ string
	switch c.Type {
	case TypeHost, TypeSrflx, TypePrflx, TypeRelay:
		typ = c.Type
	default:
		return bad("type %q", c.Type)
	}
	raw := fmt.Sprintf("%s %d udp %d %s %d typ %s", c.Foundation, comp, prio, ip.String(), port, typ)
	if typ != TypeHost {
		// The related address is informational; a bad one is left out
		// rather than refusing the candidate.
		relIP := net.ParseIP(c.RelAddr)
		relPort, err := strconv.ParseUint(c.RelPort, 10, 16)
		if relIP != nil && err == nil {
			raw += fmt.Sprintf(" raddr %s rport %d", relIP.String(), relPort)
		}
	}
	pc, err := pionice.UnmarshalCandidate(raw)
	if err != nil {
		return bad("%v", err)
	}
	return pc, nil
}

// ComponentNumber returns the candidate's component, or 0 when it does not
// parse.
func (c Candidate) ComponentNumber() int {
	n, err := strconv.ParseUint(c.Component, 10, 8)
	if err != nil {
		return 0
	}
	return int(n)
}

// candidateFromPion describes a local candidate for the wire. With
// hideRelated the related address and port, which may reveal a host
// address, are left out (privacy; they are informational only).
func candidateFromPion(pc pionice.Candidate, generation int, hideRelated bool) Candidate {
	c := Candidate{
		Component:  strconv.Itoa(int(pc.Component())),
		Foundation: pc.Foundation(),
		Generation: strconv.Itoa(generation),
		ID:         NewCandidateID(),
		IP:         pc.Address(),
		Network:    "0",
		Port:       strconv.Itoa(pc.Port()),
		Priority:   strconv.FormatUint(uint64(pc.Priority()), 10),
		Protocol:   "udp",
		Type:       pc.Type().String(),
	}
	if ra := pc.RelatedAddress(); ra != nil && pc.Type() != pionice.CandidateTypeHost && !hideRelated {
		c.RelAddr = ra.Address
		c.RelPort = strconv.Itoa(ra.Port)
	}
	return c
}

// NewCandidateID returns a fresh random identifier for a candidate's id
// attribute, which XEP-0176 requires to be unique within the session.
func NewCandidateID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
