package ice

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 4572 fingerprints may use SHA-1; only pre-image resistance matters.
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"time"

	"github.com/pion/dtls/v2"

	"github.com/jinglekit/jinglekit/jingle"
)

// ErrFingerprintMismatch is wrapped by the error of a DTLS handshake in
// which the peer's certificate did not match the fingerprint it signalled,
// or in which the peer refused this side's certificate. No application data
// has been exchanged when it is returned. It is a SecurityError: the
// session should be terminated with security-error, not fall back to
// another transport.
var ErrFingerprintMismatch = errors.New("ice: DTLS certificate does not match the signalled fingerprint")

// SecurityError is returned (by Dial) when the DTLS handshake failed for a
// security reason. It wraps ErrFingerprintMismatch and does not wrap
// jingle.ErrTransportFailed, so the session does not fall back to another
// transport method.
type SecurityError struct {
	// Local is true when this side found the mismatch, false when the peer
	// refused this side's certificate.
	Local bool
	Err   error
}

func (e *SecurityError) Error() string {
	who := "peer refused our DTLS certificate"
	if e.Local {
		who = ErrFingerprintMismatch.Error()
	}
	if e.Err != nil {
		return who + ": " + e.Err.Error()
	}
	return who
}

var _ jingle.ReasonError = (*SecurityError)(nil)

// Unwrap returns ErrFingerprintMismatch and the cause.
func (e *SecurityError) Unwrap() []error { return []error{ErrFingerprintMismatch, e.Err} }

// JingleReason implements jingle.ReasonError: the session ends with
// security-error (XEP-0166 §7.4).
func (e *SecurityError) JingleReason() jingle.Reason {
	return jingle.Reason{Condition: jingle.ReasonSecurityError, Text: e.Error()}
}

// Certificate is a DTLS identity: a self-signed certificate and its
// SHA-256 fingerprint as signalled in XEP-0320.
type Certificate struct {
	TLS         tls.Certificate
	Fingerprint string // "AB:CD:…", upper case
}

// NewCertificate creates an ECDSA P-256 self-signed certificate valid for a
// day, as WebRTC implementations do.
func NewCertificate() (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ice: generating DTLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("ice: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "jinglekit"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ice: creating DTLS certificate: %w", err)
	}
	return &Certificate{
		TLS:         tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		Fingerprint: fingerprintOf(sha256.New(), der),
	}, nil
}

// fingerprintOf formats the digest of der as RFC 4572 writes it.
func fingerprintOf(h hash.Hash, der []byte) string {
	h.Write(der)
	sum := strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
	var b strings.Builder
	for i := 0; i < len(sum); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(sum[i : i+2])
	}
	return b.String()
}

// hashByName returns the hash of an RFC 4572 hash function name, or nil
// for one this package does not accept (md2, md5, unknown names).
func hashByName(name string) func() hash.Hash {
	switch strings.ToLower(name) {
	case "sha-1":
		return sha1.New
	case "sha-224":
		return sha256.New224
	case "sha-256":
		return sha256.New
	case "sha-384":
		return sha512.New384
	case "sha-512":
		return sha512.New
	}
	return nil
}

// verifyFingerprints checks a peer's certificate against its signalled
// fingerprints: at least one must use a hash this package accepts, and
// every such one must match.
func verifyFingerprints(fps []Fingerprint, rawCerts [][]byte) error {
	if len(rawCerts) == 0 {
		return &SecurityError{Local: true, Err: errors.New("peer presented no certificate")}
	}
	checked := 0
	for _, fp := range fps {
		h := hashByName(fp.Hash)
		if h == nil {
			continue
		}
		checked++
		if got := fingerprintOf(h(), rawCerts[0]); got != fp.Normalized() {
			return &SecurityError{Local: true, Err: fmt.Errorf("%s of the certificate is %s, the peer signalled %s", fp.Hash, got, fp.Normalized())}
		}
	}
	if checked == 0 {
		return &SecurityError{Local: true, Err: errors.New("no fingerprint with a supported hash")}
	}
	return nil
}

// dtlsConfig returns the DTLS configuration of one side: the local
// certificate, a client certificate required of the peer, and the peer's
// certificate checked inside the handshake, before the Finished messages,
// so that no application data can flow with the wrong peer.
func dtlsConfig(cert *Certificate, remote func() []Fingerprint) *dtls.Config {
	return &dtls.Config{
		Certificates: []tls.Certificate{cert.TLS},
		// Self-signed certificates: authenticity comes from the fingerprint.
		InsecureSkipVerify:   true,
		ClientAuth:           dtls.RequireAnyClientCert,
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		CipherSuites: []dtls.CipherSuiteID{
			dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		},
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			return verifyFingerprints(remote(), rawCerts)
		},
	}
}

// classifyDTLSError turns a handshake error into a SecurityError when it
// is one (this side's check failed, or the peer sent a certificate alert),
// else into a transport failure.
func classifyDTLSError(err error) error {
	var se *SecurityError
	if errors.As(err, &se) {
		return se
	}
	var ae interface {
		error
		IsFatalOrCloseNotify() bool
	}
	if errors.As(err, &ae) {
		msg := strings.ToLower(ae.Error())
		for _, a := range []string{"badcertificate", "unsupportedcertificate", "certificaterevoked",
			"certificateexpired", "certificateunknown", "unknownca", "accessdenied", "decrypterror"} {
			if strings.Contains(msg, a) {
				return &SecurityError{Local: false, Err: err}
			}
		}
	}
	return fmt.Errorf("ice: DTLS handshake: %w: %w", jingle.ErrTransportFailed, err)
}
