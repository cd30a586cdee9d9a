package linklocal

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// MaxNameBytes bounds a link-local name: it is the <Instance> label of a
// DNS-SD service instance name, at most 63 bytes (RFC 6763 §4.1.1).
const MaxNameBytes = 63

// ErrInvalidName is wrapped by the errors of names that are not of the form
// "user@machine" XEP-0174 §3.1 requires.
var ErrInvalidName = errors.New("linklocal: invalid link-local name")

// ParseName checks a link-local name ("user@machine", XEP-0174 §3.1) and
// returns it as a bare JID. The whole name is one DNS label (at most 63
// bytes, valid UTF-8, no control characters); "user" is any JID localpart
// without '.' or '\' (the mDNS library cannot escape them inside a DNS
// label); "machine" is a host name label and, as XEP-0174 §6 requires,
// US-ASCII only (letters, digits and '-', not starting or ending
// with '-').
// The JID is normalised (a localpart is case-folded), so compare names as
// JIDs, not as strings.
func ParseName(name string) (jid.JID, error) {
	if name == "" {
		return jid.JID{}, fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameBytes {
		return jid.JID{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidName, len(name), MaxNameBytes)
	}
	if !utf8.ValidString(name) {
		return jid.JID{}, fmt.Errorf("%w: not UTF-8", ErrInvalidName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return jid.JID{}, fmt.Errorf("%w: control character in %q", ErrInvalidName, name)
		}
	}
	user, machine, ok := strings.Cut(name, "@")
	if !ok || user == "" || machine == "" {
		return jid.JID{}, fmt.Errorf("%w: %q is not user@machine", ErrInvalidName, name)
	}
	if strings.ContainsAny(user, ".\\") {
		// encoding a '.' or '\' inside one DNS label needs escapes that the
		// mDNS library does not handle.
		return jid.JID{}, fmt.Errorf("%w: %q: '.' and '\\' are not allowed in the user part", ErrInvalidName, name)
	}
	if err := checkMachine(machine); err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %w", ErrInvalidName, name, err)
	}
	j, err := jid.Parse(name)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %w", ErrInvalidName, name, err)
	}
	if j.Resourcepart() != "" || j.Localpart() == "" {
		return jid.JID{}, fmt.Errorf("%w: %q is not user@machine", ErrInvalidName, name)
	}
	return j, nil
}

// checkMachine checks the machine part of a name: one ASCII host label.
func checkMachine(m string) error {
	if len(m) > 63 {
		return errors.New("machine name longer than 63 bytes")
	}
	if m[0] == '-' || m[len(m)-1] == '-' {
		return errors.New("machine name starts or ends with '-'")
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		default:
			return fmt.Errorf("machine name has %q (only US-ASCII letters, digits and '-')", c)
		}
	}
	return nil
}

// machineOf returns the machine part of a valid name.
func machineOf(j jid.JID) string { return j.Domainpart() }
