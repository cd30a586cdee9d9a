package linklocal

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TXT record limits.
const (
	// MaxTXTBytes bounds a TXT record this package reads or writes, counted
	// as on the wire (each string with its length byte). DNS-SD (RFC 6763
	// §6.2) calls records over 1300 bytes "not recommended"; a larger one
	// from a peer is ignored (ErrTXTTooLarge) while the peer itself is kept.
	MaxTXTBytes = 4096
	// MaxTXTString is the size of one TXT string, "key=value" (RFC 1035
	// §3.3.14).
	MaxTXTString = 255
	// MaxTXTExtra bounds the unknown keys kept in TXT.Extra.
	MaxTXTExtra = 32
)

// TXT record errors. A peer whose TXT record has one of these is still
// listed (its name, address and port come from PTR, SRV and A records), with
// an empty TXT and the error in Peer.TXTErr.
var (
	ErrTXTTooLarge = errors.New("linklocal: TXT record too large")
	ErrTXTVersion  = errors.New("linklocal: unsupported TXT record version")
	ErrTXTInvalid  = errors.New("linklocal: invalid TXT record")
)

// Status values of the "status" TXT key (XEP-0174 §9: avail, away, dnd).
const (
	StatusAvail = "avail"
	StatusAway  = "away"
	StatusDND   = "dnd"
)

// TXT is the TXT record of a _presence._tcp service instance, with the
// keys of the XEP-0174 registry (§9). Every field is optional: a record
// without any (or with only a zero byte) is valid, and an implementation
// must still talk to its owner. Values are what the owner claims and are
// not verified by anything (XEP-0174 §7: they can "poison" JIDs, e-mail
// addresses or names).
type TXT struct {
	// TxtVers is the version of the record; "1" when this side writes it.
	// A record with another version is refused (ErrTXTVersion).
	TxtVers string
	// Presence: the status ("avail", "away" or "dnd"; empty means avail)
	// and a free-form message, the XMPP <show/> and <status/>.
	Status, Msg string
	// Personal information, published only when set (XEP-0174 §7 asks that
	// a user can disable it).
	Nick, First, Last string
	// Email and JID may hold space-separated lists.
	Email, JID string
	// Entity capabilities (XEP-0115): the application's node URI, the hash
	// algorithm ("sha-1"), the verification string and the legacy ext.
	Node, Hash, Ver, Ext string
	// PortP2PJ is the deprecated "port.p2pj" key (0 when absent). Peers are
	// always dialled on the SRV port: a different value here is ignored.
	PortP2PJ int
	// PHSH (avatar hash) and VC (legacy conferencing flags).
	PHSH, VC string
	// Extra holds unknown keys (at most MaxTXTExtra), as key → value.
	Extra map[string]string
}

// Show returns the status as one of the Status constants: an empty or
// unknown value is "avail" (XEP-0174 §9).
func (t TXT) Show() string {
	switch t.Status {
	case StatusAway, StatusDND:
		return t.Status
	}
	return StatusAvail
}

// txtField maps a registered key to its field.
func (t *TXT) field(key string) *string {
	switch key {
	case "txtvers":
		return &t.TxtVers
	case "status":
		return &t.Status
	case "msg":
		return &t.Msg
	case "nick":
		return &t.Nick
	case "1st":
		return &t.First
	case "last":
		return &t.Last
	case "email":
		return &t.Email
	case "jid":
		return &t.JID
	case "node":
		return &t.Node
	case "hash":
		return &t.Hash
	case "ver":
		return &t.Ver
	case "ext":
		return &t.Ext
	case "phsh":
		return &t.PHSH
	case "vc":
		return &t.VC
	}
	return nil
}

// txtOrder is the order in which Strings writes the registered keys:
// txtvers first, as XEP-0174 §5 and RFC 6763 §6.7 ask.
var txtOrder = []string{"txtvers", "port.p2pj", "nick", "status", "msg", "1st", "last", "email", "jid", "node", "hash", "ver", "ext", "phsh", "vc"}

// Strings returns the TXT record as DNS TXT strings ("key=value"),
// txtvers=1 first, leaving out empty fields. It fails when a string would
// exceed MaxTXTString bytes, a value is not UTF-8, an Extra key is not a
// valid DNS-SD key or collides with a registered one, or the record
// exceeds MaxTXTBytes.
func (t TXT) Strings() ([]string, error) {
	t.TxtVers = "1"
	var out []string
	total := 0
	add := func(k, v string) error {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: value of %q is not UTF-8", ErrTXTInvalid, k)
		}
		s := k + "=" + v
		if len(s) > MaxTXTString {
			return fmt.Errorf("%w: %q is %d bytes, at most %d", ErrTXTInvalid, k, len(s), MaxTXTString)
		}
		total += 1 + len(s)
		out = append(out, s)
		return nil
	}
	for _, k := range txtOrder {
		var v string
		if k == "port.p2pj" {
			if t.PortP2PJ == 0 {
				continue
			}
			if t.PortP2PJ < 0 || t.PortP2PJ > 65535 {
				return nil, fmt.Errorf("%w: port.p2pj %d", ErrTXTInvalid, t.PortP2PJ)
			}
			v = strconv.Itoa(t.PortP2PJ)
		} else {
			v = *t.field(k)
		}
		if v == "" {
			continue
		}
		if err := add(k, v); err != nil {
			return nil, err
		}
	}
	keys := make([]string, 0, len(t.Extra))
	for k := range t.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := checkTXTKey(k); err != nil {
			return nil, err
		}
		if t.field(strings.ToLower(k)) != nil || strings.EqualFold(k, "port.p2pj") {
			return nil, fmt.Errorf("%w: extra key %q is a registered key", ErrTXTInvalid, k)
		}
		if err := add(k, t.Extra[k]); err != nil {
			return nil, err
		}
	}
	if total > MaxTXTBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTXTTooLarge, total, MaxTXTBytes)
	}
	return out, nil
}

// checkTXTKey checks a DNS-SD key (RFC 6763 §6.4): printable US-ASCII
// without '=', not empty.
func checkTXTKey(k string) error {
	if k == "" {
		return fmt.Errorf("%w: empty key", ErrTXTInvalid)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e || c == '=' {
			return fmt.Errorf("%w: key %q", ErrTXTInvalid, k)
		}
	}
	return nil
}

// ParseTXT reads a TXT record given as its DNS strings. Keys are matched
// case-insensitively and only the first occurrence of a key counts (RFC
// 6763 §6.4); empty strings, strings without a key and boolean keys (no
// '=') of the registry are skipped. It fails with ErrTXTTooLarge for a
// record over MaxTXTBytes and ErrTXTVersion when txtvers is present and
// not "1"; no field is set then. Values that are not UTF-8 are repaired
// (invalid bytes become U+FFFD), a port.p2pj that is not a port is
// ignored, and unknown keys beyond MaxTXTExtra are dropped.
func ParseTXT(ss []string) (TXT, error) {
	total := 0
	for _, s := range ss {
		total += 1 + len(s)
	}
	if total > MaxTXTBytes {
		return TXT{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTXTTooLarge, total, MaxTXTBytes)
	}
	var t TXT
	seen := map[string]bool{}
	for _, s := range ss {
		k, v, hasValue := strings.Cut(s, "=")
		if k == "" {
			continue
		}
		lk := strings.ToLower(k)
		if seen[lk] {
			continue
		}
		seen[lk] = true
		v = strings.ToValidUTF8(v, "\uFFFD")
		switch f := t.field(lk); {
		case lk == "port.p2pj":
			if p, err := strconv.Atoi(v); err == nil && p > 0 && p <= 65535 {
				t.PortP2PJ = p
			}
		case f != nil:
			if hasValue {
				*f = v
			}
		default:
			if len(t.Extra) >= MaxTXTExtra {
				continue
			}
			if t.Extra == nil {
				t.Extra = map[string]string{}
			}
			t.Extra[strings.ToValidUTF8(k, "\uFFFD")] = v
		}
	}
	if t.TxtVers != "" && t.TxtVers != "1" {
		return TXT{}, fmt.Errorf("%w: txtvers=%q", ErrTXTVersion, t.TxtVers)
	}
	return t, nil
}
