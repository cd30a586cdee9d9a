package omemo

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// numPreKeys is how many one-time pre-keys a bundle offers (XEP-0384
// wants at least 20; Conversations publishes 100).
const numPreKeys = 100

// stateFile is the JSON form of a device's state.
type stateFile struct {
	Version        int    `json:"v"`
	JID            string `json:"jid"`
	DeviceID       uint32 `json:"device_id"`
	RegistrationID uint32 `json:"registration_id"`
	IdentityPub    []byte `json:"identity_pub"`
	IdentityPriv   []byte `json:"identity_priv"`
	// The pre-keys are kept as private keys, not as libsignal records:
	// go.mau.fi/libsignal v0.2.1 reads a record's 33-byte public key as
	// 32 bytes starting with the type byte (record.NewPreKeyFromStruct),
	// which breaks the signature and X3DH after a reload.
	SignedPreKeyID   uint32                 `json:"signed_pre_key_id"`
	SignedPreKeyPriv []byte                 `json:"signed_pre_key_priv"`
	SignedPreKeySig  []byte                 `json:"signed_pre_key_sig"`
	SignedPreKeyTime int64                  `json:"signed_pre_key_time"`
	PreKeys          map[uint32][]byte      `json:"pre_keys"` // id → private key
	NextPreKeyID     uint32                 `json:"next_pre_key_id"`
	Sessions         map[string][]byte      `json:"sessions,omitempty"`
	Devices          map[string]*DeviceInfo `json:"devices,omitempty"`
}

// Trust is what this side decided about a peer device's identity key.
type Trust string

// Trust levels. BTBV ("blind trust before verification"): a new device's
// key is trusted blindly while none of its account's devices is
// verified; once one is, new devices are Undecided until verified.
const (
	TrustBlind     Trust = "blind"     // trusted without verification
	TrustVerified  Trust = "verified"  // verified by the user (trust add)
	TrustUndecided Trust = "undecided" // seen, not trusted yet
	TrustDistrust  Trust = "distrusted"
)

// Trusted reports whether keys are encrypted for, and accepted from, a
// device with this trust.
func (t Trust) Trusted() bool { return t == TrustBlind || t == TrustVerified }

// DeviceInfo is what this side knows of a peer device.
type DeviceInfo struct {
	JID      string    `json:"jid"`
	ID       uint32    `json:"id"`
	Identity []byte    `json:"identity"` // serialized public identity key (33 bytes)
	Trust    Trust     `json:"trust"`
	Seen     time.Time `json:"seen"`
	// Changed holds a different identity key announced for the same
	// device, kept until the user decides (never used).
	Changed []byte `json:"changed,omitempty"`
}

// Fingerprint returns the device's identity-key fingerprint as
// Conversations shows it.
func (d DeviceInfo) Fingerprint() string { return Fingerprint(d.Identity) }

// store is the persistent state of this device and the libsignal stores
// over it. Every change is written to the file at once (mode 0600).
type store struct {
	mu      sync.Mutex
	path    string
	modTime time.Time // of the file as last read or written
	st      stateFile
	ser     *serialize.Serializer
	idkp    *identity.KeyPair
}

func deviceKey(bare string, id uint32) string { return bare + "|" + strconv.FormatUint(uint64(id), 10) }

// openStore loads the state at path, or creates a new device for bare
// (fresh keys) when the file does not exist.
func openStore(path, bare string) (*store, bool, error) {
	s := &store{path: path, ser: serialize.NewProtoBufSerializer()}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.generate(bare); err != nil {
			return nil, false, err
		}
		return s, true, s.saveLocked()
	case err != nil:
		return nil, false, fmt.Errorf("omemo: reading the state: %w", err)
	}
	if err := json.Unmarshal(b, &s.st); err != nil {
		return nil, false, fmt.Errorf("omemo: state file %s: %w", path, err)
	}
	if s.st.Version != stateVersion {
		return nil, false, fmt.Errorf("omemo: state file %s has version %d, want %d", path, s.st.Version, stateVersion)
	}
	if s.st.JID != bare {
		return nil, false, fmt.Errorf("omemo: state file %s belongs to %s, not %s", path, s.st.JID, bare)
	}
	if len(s.st.IdentityPub) != 33 || len(s.st.IdentityPriv) != 32 {
		return nil, false, fmt.Errorf("omemo: state file %s: bad identity key", path)
	}
	pub, err := ecc.DecodePoint(s.st.IdentityPub, 0)
	if err != nil {
		return nil, false, fmt.Errorf("omemo: state file %s: %w", path, err)
	}
	s.idkp = identity.NewKeyPair(identity.NewKey(pub), ecc.NewDjbECPrivateKey([32]byte(s.st.IdentityPriv)))
	if s.st.Sessions == nil {
		s.st.Sessions = map[string][]byte{}
	}
	if s.st.Devices == nil {
		s.st.Devices = map[string]*DeviceInfo{}
	}
	if fi, err := os.Stat(path); err == nil {
		s.modTime = fi.ModTime()
	}
	return s, false, nil
}

func randomDeviceID() (uint32, error) {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if id := binary.BigEndian.Uint32(b[:]) & 0x7fffffff; id != 0 {
			return id, nil
		}
	}
}

func (s *store) generate(bare string) error {
	idkp, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return fmt.Errorf("omemo: generating the identity key: %w", err)
	}
	dev, err := randomDeviceID()
	if err != nil {
		return fmt.Errorf("omemo: %w", err)
	}
	spk, err := keyhelper.GenerateSignedPreKey(idkp, 1, s.ser.SignedPreKeyRecord)
	if err != nil {
		return fmt.Errorf("omemo: generating the signed pre-key: %w", err)
	}
	priv := idkp.PrivateKey().Serialize()
	spkPriv := spk.KeyPair().PrivateKey().Serialize()
	sig := spk.Signature()
	s.idkp = idkp
	s.st = stateFile{
		Version: stateVersion, JID: bare, DeviceID: dev,
		RegistrationID: keyhelper.GenerateRegistrationID(),
		IdentityPub:    idkp.PublicKey().Serialize(), IdentityPriv: priv[:],
		SignedPreKeyID: spk.ID(), SignedPreKeyPriv: spkPriv[:], SignedPreKeySig: sig[:], SignedPreKeyTime: spk.Timestamp(),
		PreKeys: map[uint32][]byte{}, NextPreKeyID: 1,
		Sessions: map[string][]byte{}, Devices: map[string]*DeviceInfo{},
	}
	return s.refillPreKeysLocked()
}

// refillPreKeysLocked tops the one-time pre-keys up to numPreKeys.
func (s *store) refillPreKeysLocked() error {
	for len(s.st.PreKeys) < numPreKeys {
		kp, err := ecc.GenerateKeyPair()
		if err != nil {
			return fmt.Errorf("omemo: generating a pre-key: %w", err)
		}
		id := s.st.NextPreKeyID
		s.st.NextPreKeyID++
		if s.st.NextPreKeyID > 0xFFFFFF {
			s.st.NextPreKeyID = 1
		}
		priv := kp.PrivateKey().Serialize()
		s.st.PreKeys[id] = priv[:]
	}
	return nil
}

// saveLocked writes the state atomically, readable by the owner only.
func (s *store) saveLocked() error {
	b, err := json.Marshal(&s.st)
	if err != nil {
		return fmt.Errorf("omemo: encoding the state: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("omemo: %w", err)
	}
	f, err := os.CreateTemp(dir, ".omemo-*.tmp")
	if err != nil {
		return fmt.Errorf("omemo: saving the state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("omemo: saving the state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("omemo: saving the state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("omemo: saving the state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("omemo: saving the state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("omemo: saving the state: %w", err)
	}
	if fi, err := os.Stat(s.path); err == nil {
		s.modTime = fi.ModTime()
	}
	return nil
}

// reloadLocked re-reads the file when another process (jinglectl trust)
// changed it since this one last read or wrote it. Every change is saved at
// once, so nothing of this process is lost.
func (s *store) reloadLocked() {
	fi, err := os.Stat(s.path)
	if err != nil || fi.ModTime().Equal(s.modTime) {
		return
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion || st.JID != s.st.JID || st.DeviceID != s.st.DeviceID {
		return
	}
	if st.Sessions == nil {
		st.Sessions = map[string][]byte{}
	}
	if st.Devices == nil {
		st.Devices = map[string]*DeviceInfo{}
	}
	s.st, s.modTime = st, fi.ModTime()
}

// The libsignal stores. libsignal calls them with s.mu held by the caller
// of the session operation (see Manager), so they do not lock.

// GetIdentityKeyPair implements store.IdentityKey.
func (s *store) GetIdentityKeyPair() *identity.KeyPair { return s.idkp }

// GetLocalRegistrationID implements store.IdentityKey.
func (s *store) GetLocalRegistrationID() uint32 { return s.st.RegistrationID }

// SaveIdentity implements store.IdentityKey: a device seen for the first
// time is recorded with the BTBV trust of its account.
func (s *store) SaveIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) error {
	k := deviceKey(addr.Name(), addr.DeviceID())
	if d, ok := s.st.Devices[k]; ok {
		if string(d.Identity) != string(key.Serialize()) {
			return &IdentityChangedError{JID: addr.Name(), Device: addr.DeviceID()}
		}
		return nil
	}
	s.st.Devices[k] = &DeviceInfo{JID: addr.Name(), ID: addr.DeviceID(), Identity: key.Serialize(),
		Trust: s.firstTrustLocked(addr.Name()), Seen: time.Now().UTC()}
	return s.saveLocked()
}

// firstTrustLocked is BTBV: blind trust while the user has decided about
// none of the account's devices (verified or distrusted one).
func (s *store) firstTrustLocked(bare string) Trust {
	for _, d := range s.st.Devices {
		if d.JID == bare && (d.Trust == TrustVerified || d.Trust == TrustDistrust) {
			return TrustUndecided
		}
	}
	return TrustBlind
}

// IsTrustedIdentity implements store.IdentityKey.
func (s *store) IsTrustedIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) (bool, error) {
	d, ok := s.st.Devices[deviceKey(addr.Name(), addr.DeviceID())]
	if !ok {
		return s.firstTrustLocked(addr.Name()).Trusted(), nil
	}
	return string(d.Identity) == string(key.Serialize()) && d.Trust.Trusted(), nil
}

// LoadPreKey implements store.PreKey.
func (s *store) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	b, ok := s.st.PreKeys[id]
	if !ok || len(b) != 32 {
		return nil, fmt.Errorf("omemo: no pre-key %d", id)
	}
	return record.NewPreKey(id, ecc.CreateKeyPair(b), s.ser.PreKeyRecord), nil
}

// StorePreKey implements store.PreKey.
func (s *store) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	priv := r.KeyPair().PrivateKey().Serialize()
	s.st.PreKeys[id] = priv[:]
	return s.saveLocked()
}

// ContainsPreKey implements store.PreKey.
func (s *store) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.st.PreKeys[id]
	return ok, nil
}

// RemovePreKey implements store.PreKey; the state is saved by the caller
// once a replacement is generated.
func (s *store) RemovePreKey(_ context.Context, id uint32) error {
	delete(s.st.PreKeys, id)
	return nil
}

// LoadSignedPreKey implements store.SignedPreKey.
func (s *store) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	if id != s.st.SignedPreKeyID || len(s.st.SignedPreKeyPriv) != 32 || len(s.st.SignedPreKeySig) != 64 {
		return nil, fmt.Errorf("omemo: no signed pre-key %d", id)
	}
	return record.NewSignedPreKey(id, s.st.SignedPreKeyTime, ecc.CreateKeyPair(s.st.SignedPreKeyPriv),
		[64]byte(s.st.SignedPreKeySig), s.ser.SignedPreKeyRecord), nil
}

// LoadSignedPreKeys implements store.SignedPreKey.
func (s *store) LoadSignedPreKeys(ctx context.Context) ([]*record.SignedPreKey, error) {
	r, err := s.LoadSignedPreKey(ctx, s.st.SignedPreKeyID)
	if err != nil {
		return nil, err
	}
	return []*record.SignedPreKey{r}, nil
}

// StoreSignedPreKey implements store.SignedPreKey.
func (s *store) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	priv := r.KeyPair().PrivateKey().Serialize()
	sig := r.Signature()
	s.st.SignedPreKeyID, s.st.SignedPreKeyPriv, s.st.SignedPreKeySig, s.st.SignedPreKeyTime = id, priv[:], sig[:], r.Timestamp()
	return s.saveLocked()
}

// ContainsSignedPreKey implements store.SignedPreKey.
func (s *store) ContainsSignedPreKey(ctx context.Context, id uint32) (bool, error) {
	_, err := s.LoadSignedPreKey(ctx, id)
	return err == nil, nil
}

// RemoveSignedPreKey implements store.SignedPreKey (there is only one).
func (s *store) RemoveSignedPreKey(context.Context, uint32) error { return nil }

// LoadSession implements store.Session.
func (s *store) LoadSession(_ context.Context, addr *protocol.SignalAddress) (*record.Session, error) {
	b, ok := s.st.Sessions[deviceKey(addr.Name(), addr.DeviceID())]
	if !ok {
		return record.NewSession(s.ser.Session, s.ser.State), nil
	}
	return record.NewSessionFromBytes(b, s.ser.Session, s.ser.State)
}

// GetSubDeviceSessions implements store.Session.
func (s *store) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	var ids []uint32
	for _, d := range s.st.Devices {
		if _, ok := s.st.Sessions[deviceKey(name, d.ID)]; ok && d.JID == name {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

// StoreSession implements store.Session.
func (s *store) StoreSession(_ context.Context, addr *protocol.SignalAddress, r *record.Session) error {
	s.st.Sessions[deviceKey(addr.Name(), addr.DeviceID())] = r.Serialize()
	return s.saveLocked()
}

// ContainsSession implements store.Session.
func (s *store) ContainsSession(_ context.Context, addr *protocol.SignalAddress) (bool, error) {
	_, ok := s.st.Sessions[deviceKey(addr.Name(), addr.DeviceID())]
	return ok, nil
}

// DeleteSession implements store.Session.
func (s *store) DeleteSession(_ context.Context, addr *protocol.SignalAddress) error {
	delete(s.st.Sessions, deviceKey(addr.Name(), addr.DeviceID()))
	return s.saveLocked()
}

// DeleteAllSessions implements store.Session.
func (s *store) DeleteAllSessions(context.Context) error {
	s.st.Sessions = map[string][]byte{}
	return s.saveLocked()
}
