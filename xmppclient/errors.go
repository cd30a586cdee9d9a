package xmppclient

import (
	"errors"
	"fmt"
)

// Errors that callers of Dial branch on. They are wrapped, so test them with
// errors.Is.
var (
	// ErrAuth reports that the server rejected the credentials (SASL failure
	// not-authorized): retrying with the same password is pointless.
	ErrAuth = errors.New("xmppclient: authentication failed")

	// ErrConnect reports that no TCP connection to the server could be
	// established: DNS failure, no SRV target reachable, connection refused
	// or timed out.
	ErrConnect = errors.New("xmppclient: cannot connect")

	// ErrTLS reports that TLS could not be established, most importantly
	// because the server certificate failed verification (unknown authority,
	// wrong host name, expired). The underlying crypto/tls or crypto/x509
	// error stays in the chain.
	ErrTLS = errors.New("xmppclient: TLS failed")

	// ErrNoTLS reports that the server does not offer TLS (no STARTTLS in
	// its stream features). It matches ErrTLS too. The client never logs in
	// without TLS.
	ErrNoTLS = fmt.Errorf("%w: the server offers no TLS", ErrTLS)

	// ErrNotXMPP reports that what answered at the address is not an XMPP
	// server: it sent no XMPP stream (binary data, an HTTP reply…). It
	// matches ErrConnect too.
	ErrNotXMPP = fmt.Errorf("%w: not an XMPP server", ErrConnect)

	// ErrNoMechanism reports that the server offered none of the SASL
	// mechanisms the client was configured to use.
	ErrNoMechanism = errors.New("xmppclient: no mutually supported SASL mechanism")

	// ErrDisconnected is what Client.Err returns when the stream ended
	// without an error and without Close being called, typically because the
	// server closed it.
	ErrDisconnected = errors.New("xmppclient: stream closed by peer")
)

// SASLError is a SASL <failure/> sent by the server (RFC 6120 §6.5).
// A failure with condition not-authorized matches ErrAuth with errors.Is.
type SASLError struct {
	// Mechanism is the SASL mechanism that was attempted.
	Mechanism string
	// Condition is the defined condition, eg. "not-authorized",
	// "account-disabled" or "temporary-auth-failure".
	Condition string
	// Text is the optional human readable description.
	Text string
}

func (e *SASLError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("xmppclient: SASL %s failure: %s (%s)", e.Mechanism, e.Condition, e.Text)
	}
	return fmt.Sprintf("xmppclient: SASL %s failure: %s", e.Mechanism, e.Condition)
}

// Is reports whether target is ErrAuth and the condition says the
// credentials were wrong.
func (e *SASLError) Is(target error) bool {
	return target == ErrAuth && e.Condition == "not-authorized"
}
