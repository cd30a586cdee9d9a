package omemo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	"mellium.im/xmpp/jid"
)

// Manager is this device's OMEMO 0.3 state on one account: its keys and
// sessions (persisted in a file, mode 0600), its device list and bundle
// (published over PEP), and the encryption and decryption of key material
// for peers' devices. Its methods are safe for concurrent use.
type Manager struct {
	st     *store
	stream IQSender
	bare   jid.JID
	log    *slog.Logger
	count  counters
}

// Open loads the OMEMO state of stream's account from path, or creates a
// new device (fresh keys, random device id) when the file does not exist.
// Call Publish once connected to announce the device.
func Open(path string, stream IQSender, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	bare := stream.LocalAddr().Bare()
	st, created, err := openStore(path, bare.String())
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("omemo: new device", "jid", bare.String(), "device", st.st.DeviceID)
	}
	return &Manager{st: st, stream: stream, bare: bare, log: log}, nil
}

// OpenOffline loads the OMEMO state of account bare from path without a
// connection, to read and change trust (Devices, Verify, Distrust): the
// other methods need a stream and must not be called. A running agent
// sees the changes the next time it uses its state.
func OpenOffline(path string, bare jid.JID) (*Manager, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("omemo: no state for %s: %w", bare.String(), err)
	}
	st, _, err := openStore(path, bare.Bare().String())
	if err != nil {
		return nil, err
	}
	return &Manager{st: st, bare: bare.Bare(), log: slog.Default()}, nil
}

// DeviceID returns this device's id.
func (m *Manager) DeviceID() uint32 { return m.st.st.DeviceID }

// Fingerprint returns this device's fingerprint as Conversations shows it.
func (m *Manager) Fingerprint() string { return Fingerprint(m.st.st.IdentityPub) }

// bundle returns this device's bundle.
func (m *Manager) bundle() (Bundle, error) {
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	spk, err := m.st.LoadSignedPreKeys(context.Background())
	if err != nil || len(spk) == 0 {
		return Bundle{}, fmt.Errorf("omemo: the signed pre-key: %w", err)
	}
	sig := spk[0].Signature()
	b := Bundle{
		SignedPreKeyPublic:    keyWithID{SignedID: spk[0].ID(), Key: spk[0].KeyPair().PublicKey().Serialize()},
		SignedPreKeySignature: sig[:],
		IdentityKey:           m.st.st.IdentityPub,
	}
	for id := range m.st.st.PreKeys {
		pk, err := m.st.LoadPreKey(context.Background(), id)
		if err != nil {
			return Bundle{}, err
		}
		b.PreKeys = append(b.PreKeys, keyWithID{PreKeyID: id, Key: pk.KeyPair().PublicKey().Serialize()})
	}
	slices.SortFunc(b.PreKeys, func(a, b keyWithID) int { return int(a.PreKeyID) - int(b.PreKeyID) })
	return b, nil
}

// Publish publishes this device's bundle and adds it to the account's
// device list (keeping the other devices listed there).
func (m *Manager) Publish(ctx context.Context) error {
	b, err := m.bundle()
	if err != nil {
		return err
	}
	if err := publishItem(ctx, m.stream, NodeBundlesPrefix+strconv.FormatUint(uint64(m.DeviceID()), 10), b); err != nil {
		return fmt.Errorf("omemo: publishing the bundle: %w", err)
	}
	m.count.bundlePublishes.Add(1)
	var list DeviceList
	if err := fetchItem(ctx, m.stream, m.bare, NodeDeviceList, &list); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("omemo: reading the own device list: %w", err)
	}
	if slices.Contains(list.IDs(), m.DeviceID()) {
		return nil
	}
	list.Devices = append(list.Devices, Device{ID: m.DeviceID()})
	if err := publishItem(ctx, m.stream, NodeDeviceList, list); err != nil {
		return fmt.Errorf("omemo: publishing the device list: %w", err)
	}
	return nil
}

// PeerDevices fetches the device ids an account lists.
func (m *Manager) PeerDevices(ctx context.Context, peer jid.JID) ([]uint32, error) {
	var list DeviceList
	if err := fetchItem(ctx, m.stream, peer.Bare(), NodeDeviceList, &list); err != nil {
		return nil, err
	}
	return list.IDs(), nil
}

// fetchBundle gets a device's bundle, as libsignal wants it, with one
// one-time pre-key picked at random.
func (m *Manager) fetchBundle(ctx context.Context, peer jid.JID, dev uint32) (*prekey.Bundle, error) {
	var b Bundle
	m.count.bundleFetches.Add(1)
	if err := fetchItem(ctx, m.stream, peer, NodeBundlesPrefix+strconv.FormatUint(uint64(dev), 10), &b); err != nil {
		return nil, err
	}
	ik, err := ecc.DecodePoint(b.IdentityKey, 0)
	if err != nil {
		return nil, fmt.Errorf("omemo: bundle of %s/%d: identity key: %w", peer.String(), dev, err)
	}
	spk, err := ecc.DecodePoint(b.SignedPreKeyPublic.Key, 0)
	if err != nil {
		return nil, fmt.Errorf("omemo: bundle of %s/%d: signed pre-key: %w", peer.String(), dev, err)
	}
	if len(b.SignedPreKeySignature) != 64 {
		return nil, fmt.Errorf("omemo: bundle of %s/%d: signature of %d bytes", peer.String(), dev, len(b.SignedPreKeySignature))
	}
	if len(b.PreKeys) == 0 {
		return nil, fmt.Errorf("omemo: bundle of %s/%d has no pre-key", peer.String(), dev)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(b.PreKeys))))
	if err != nil {
		return nil, err
	}
	pick := b.PreKeys[n.Int64()]
	pk, err := ecc.DecodePoint(pick.Key, 0)
	if err != nil {
		return nil, fmt.Errorf("omemo: bundle of %s/%d: pre-key %d: %w", peer.String(), dev, pick.PreKeyID, err)
	}
	return prekey.NewBundle(0, dev, optional.NewOptionalUint32(pick.PreKeyID), b.SignedPreKeyPublic.SignedID,
		pk, spk, [64]byte(b.SignedPreKeySignature), identity.NewKey(ik)), nil
}

// checkIdentityLocked compares a device's identity key with the one
// recorded: a different key is recorded as Changed and reported, never
// used. A device seen for the first time is recorded with BTBV trust.
func (m *Manager) checkIdentityLocked(bare string, dev uint32, key []byte) error {
	m.st.reloadLocked()
	d, ok := m.st.st.Devices[deviceKey(bare, dev)]
	if !ok {
		// First seen: recorded with its BTBV trust, so that an
		// undecided device shows in the trust list.
		d = &DeviceInfo{JID: bare, ID: dev, Identity: slices.Clone(key), Trust: m.st.firstTrustLocked(bare), Seen: time.Now().UTC()}
		m.st.st.Devices[deviceKey(bare, dev)] = d
		if err := m.st.saveLocked(); err != nil {
			return err
		}
	}
	if string(d.Identity) != string(key) {
		if string(d.Changed) != string(key) {
			d.Changed = slices.Clone(key)
			if err := m.st.saveLocked(); err != nil {
				return err
			}
		}
		return &IdentityChangedError{JID: bare, Device: dev, Old: Fingerprint(d.Identity), New: Fingerprint(key)}
	}
	if !d.Trust.Trusted() {
		return fmt.Errorf("%w: device %d of %s is %s (fingerprint %s)", ErrUntrusted, dev, bare, d.Trust, Fingerprint(d.Identity))
	}
	return nil
}

func (m *Manager) builder(addr *protocol.SignalAddress) *session.Builder {
	return session.NewBuilder(m.st, m.st, m.st, m.st, addr, m.st.ser)
}

// ensureSession builds a session with a peer device from its bundle when
// there is none yet (X3DH).
func (m *Manager) ensureSession(ctx context.Context, peer jid.JID, dev uint32) error {
	bare := peer.Bare().String()
	addr := protocol.NewSignalAddress(bare, dev)
	m.st.mu.Lock()
	_, has := m.st.st.Sessions[deviceKey(bare, dev)]
	m.st.mu.Unlock()
	if has {
		return nil
	}
	b, err := m.fetchBundle(ctx, peer.Bare(), dev)
	if err != nil {
		return err
	}
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	if err := m.checkIdentityLocked(bare, dev, b.IdentityKey().Serialize()); err != nil {
		return err
	}
	if err := m.builder(addr).ProcessBundle(ctx, b); err != nil {
		return fmt.Errorf("omemo: session with %s/%d: %w", bare, dev, err)
	}
	m.count.sessionsBuilt.Add(1)
	m.log.Debug("omemo: new session", "peer", bare, "device", dev)
	return nil
}

// Encrypt encrypts keyMaterial for every trusted device of peer's account
// and returns the <encrypted/> element with iv in its header (without a
// payload; set one if needed). Devices that cannot be used (untrusted, a
// changed identity key, no bundle) are skipped and logged; when none is
// left, the error wraps ErrNoDevices and says why for each.
func (m *Manager) Encrypt(ctx context.Context, peer jid.JID, keyMaterial, iv []byte) (Encrypted, error) {
	devs, err := m.PeerDevices(ctx, peer)
	if err != nil {
		return Encrypted{}, fmt.Errorf("%w: %s: %w", ErrNoDevices, peer.Bare().String(), err)
	}
	bare := peer.Bare().String()
	e := Encrypted{Header: Header{SID: m.DeviceID(), IV: slices.Clone(iv)}}
	var skipped []error
	for _, dev := range devs {
		if bare == m.bare.String() && dev == m.DeviceID() {
			continue
		}
		k, err := m.encryptFor(ctx, peer, dev, keyMaterial)
		if err != nil {
			m.log.Warn("omemo: not encrypting for a device", "peer", bare, "device", dev, "err", err)
			skipped = append(skipped, err)
			continue
		}
		e.Header.Keys = append(e.Header.Keys, k)
	}
	if len(e.Header.Keys) == 0 {
		if len(devs) == 0 {
			return Encrypted{}, fmt.Errorf("%w: %s lists no OMEMO device", ErrNoDevices, bare)
		}
		return Encrypted{}, fmt.Errorf("%w for %s: %w", ErrNoDevices, bare, errors.Join(skipped...))
	}
	return e, nil
}

func (m *Manager) encryptFor(ctx context.Context, peer jid.JID, dev uint32, keyMaterial []byte) (Key, error) {
	if err := m.ensureSession(ctx, peer, dev); err != nil {
		return Key{}, err
	}
	bare := peer.Bare().String()
	addr := protocol.NewSignalAddress(bare, dev)
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	m.st.reloadLocked()
	d, ok := m.st.st.Devices[deviceKey(bare, dev)]
	if ok && !d.Trust.Trusted() {
		return Key{}, fmt.Errorf("%w: device %d of %s is %s (fingerprint %s)", ErrUntrusted, dev, bare, d.Trust, Fingerprint(d.Identity))
	}
	msg, err := session.NewCipher(m.builder(addr), addr).Encrypt(ctx, keyMaterial)
	if err != nil {
		return Key{}, fmt.Errorf("omemo: encrypting for %s/%d: %w", bare, dev, err)
	}
	pre := msg.Type() == protocol.PREKEY_TYPE
	if pre {
		m.count.preKeySent.Add(1)
	}
	return Key{RID: dev, PreKey: pre, Value: msg.Serialize()}, nil
}

// Decrypt decrypts the key material an <encrypted/> from peer carries for
// this device. A pre-key message builds the session (X3DH) and consumes a
// one-time pre-key, which is replaced and the bundle republished; it is
// then acknowledged (Acknowledge) when the stream can send messages.
func (m *Manager) Decrypt(ctx context.Context, peer jid.JID, e Encrypted) ([]byte, error) {
	var mine *Key
	for i := range e.Header.Keys {
		if e.Header.Keys[i].RID == m.DeviceID() {
			mine = &e.Header.Keys[i]
			break
		}
	}
	if mine == nil {
		return nil, fmt.Errorf("omemo: the message from %s is not encrypted for this device (%d)", peer.Bare().String(), m.DeviceID())
	}
	bare := peer.Bare().String()
	dev := e.Header.SID
	addr := protocol.NewSignalAddress(bare, dev)
	m.st.mu.Lock()
	m.st.reloadLocked()
	km, consumed, err := m.decryptLocked(ctx, addr, mine)
	m.st.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if consumed {
		if err := m.Publish(ctx); err != nil {
			m.log.Warn("omemo: republishing the bundle after a pre-key was used", "err", err)
		}
	}
	if _, ok := m.stream.(StanzaSender); ok && mine.PreKey {
		if err := m.Acknowledge(ctx, peer, dev); err != nil {
			m.log.Warn("omemo: cannot acknowledge a pre-key message: the peer goes on sending pre-key messages", "peer", peer.String(), "device", dev, "err", err)
		}
	}
	return km, nil
}

func (m *Manager) decryptLocked(ctx context.Context, addr *protocol.SignalAddress, k *Key) ([]byte, bool, error) {
	bare, dev := addr.Name(), addr.DeviceID()
	c := session.NewCipher(m.builder(addr), addr)
	if k.PreKey {
		msg, err := protocol.NewPreKeySignalMessageFromBytes(k.Value, m.st.ser.PreKeySignalMessage, m.st.ser.SignalMessage)
		if err != nil {
			return nil, false, fmt.Errorf("omemo: pre-key message from %s/%d: %w", bare, dev, err)
		}
		if err := m.checkIdentityLocked(bare, dev, msg.IdentityKey().Serialize()); err != nil {
			return nil, false, err
		}
		before := len(m.st.st.PreKeys)
		km, err := c.DecryptMessage(ctx, msg)
		if err != nil {
			return nil, false, fmt.Errorf("omemo: decrypting from %s/%d: %w", bare, dev, err)
		}
		m.count.preKeyReceived.Add(1)
		consumed := len(m.st.st.PreKeys) < before
		if consumed {
			m.count.preKeysUsed.Add(1)
			m.count.sessionsBuilt.Add(1)
			if err := m.st.refillPreKeysLocked(); err != nil {
				return nil, false, err
			}
		}
		return km, consumed, m.st.saveLocked()
	}
	msg, err := protocol.NewSignalMessageFromBytes(k.Value, m.st.ser.SignalMessage)
	if err != nil {
		return nil, false, fmt.Errorf("omemo: message from %s/%d: %w", bare, dev, err)
	}
	d, ok := m.st.st.Devices[deviceKey(bare, dev)]
	if !ok {
		return nil, false, fmt.Errorf("omemo: message from %s/%d without a session", bare, dev)
	}
	if !d.Trust.Trusted() {
		return nil, false, fmt.Errorf("%w: device %d of %s is %s (fingerprint %s)", ErrUntrusted, dev, bare, d.Trust, Fingerprint(d.Identity))
	}
	km, err := c.Decrypt(ctx, msg)
	if err != nil {
		return nil, false, fmt.Errorf("omemo: decrypting from %s/%d: %w", bare, dev, err)
	}
	return km, false, m.st.saveLocked()
}

// SessionCount returns the number of sessions this device holds with bare's
// devices.
func (m *Manager) SessionCount(bare string) int {
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	n := 0
	for k := range m.st.st.Sessions {
		if strings.HasPrefix(k, bare+"|") {
			n++
		}
	}
	return n
}
