package omemo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Fingerprint returns an identity key's fingerprint as Conversations shows
// it: the hex of the 32-byte Curve25519 key (the 0x05 type byte left out),
// in eight groups of eight digits.
func Fingerprint(identity []byte) string {
	if len(identity) == 33 && identity[0] == 0x05 {
		identity = identity[1:]
	}
	h := hex.EncodeToString(identity)
	var b strings.Builder
	for i := 0; i < len(h); i += 8 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i:min(i+8, len(h))])
	}
	return b.String()
}

// normalizeFingerprint strips spaces, colons and a leading "05" from a
// fingerprint typed by a user, and lowercases it.
func normalizeFingerprint(fp string) string {
	fp = strings.ToLower(strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(fp))
	if len(fp) == 66 && strings.HasPrefix(fp, "05") {
		fp = fp[2:]
	}
	return fp
}

// IdentityChangedError is returned when a device announces an identity key
// other than the one recorded for it: the key is not used and is kept in
// DeviceInfo.Changed until the user decides (trust add / remove).
type IdentityChangedError struct {
	JID    string
	Device uint32
	// Old and New are the fingerprints.
	Old, New string
}

func (e *IdentityChangedError) Error() string {
	s := fmt.Sprintf("omemo: the identity key of device %d of %s changed", e.Device, e.JID)
	if e.Old != "" {
		s += fmt.Sprintf(" (was %s, now %s)", e.Old, e.New)
	}
	return s + "; not trusted until verified (jinglectl trust)"
}

// ErrUntrusted is wrapped when a device's key is not trusted.
var ErrUntrusted = errors.New("omemo: device not trusted")

// ErrNoDevices is returned when a message cannot be encrypted for any
// device of the recipient: none published, or none trusted.
var ErrNoDevices = errors.New("omemo: no usable device")

// Devices returns what this side knows of the devices of bare (all
// accounts when bare is ""), sorted by account and id.
func (m *Manager) Devices(bare string) []DeviceInfo {
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	m.st.reloadLocked()
	var out []DeviceInfo
	for _, d := range m.st.st.Devices {
		if bare == "" || d.JID == bare {
			out = append(out, *d)
		}
	}
	slices.SortFunc(out, func(a, b DeviceInfo) int {
		if c := strings.Compare(a.JID, b.JID); c != 0 {
			return c
		}
		return int(a.ID) - int(b.ID)
	})
	return out
}

// Verify marks the device of bare whose identity key has fingerprint fp as
// verified. A changed key (DeviceInfo.Changed) that matches replaces the
// old one, and its old session is dropped.
func (m *Manager) Verify(bare, fp string) (DeviceInfo, error) {
	return m.setTrust(bare, fp, TrustVerified)
}

// Distrust marks the device of bare with fingerprint fp as distrusted: no
// key is encrypted for it or accepted from it.
func (m *Manager) Distrust(bare, fp string) (DeviceInfo, error) {
	return m.setTrust(bare, fp, TrustDistrust)
}

func (m *Manager) setTrust(bare, fp string, t Trust) (DeviceInfo, error) {
	want := normalizeFingerprint(fp)
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	m.st.reloadLocked()
	for k, d := range m.st.st.Devices {
		if d.JID != bare {
			continue
		}
		switch want {
		case normalizeFingerprint(Fingerprint(d.Identity)):
		case normalizeFingerprint(Fingerprint(d.Changed)):
			if len(d.Changed) == 0 {
				continue
			}
			if t == TrustVerified {
				d.Identity, d.Changed = d.Changed, nil
				delete(m.st.st.Sessions, k)
			}
		default:
			continue
		}
		d.Trust = t
		return *d, m.st.saveLocked()
	}
	return DeviceInfo{}, fmt.Errorf("omemo: no device of %s has the fingerprint %s", bare, fp)
}
