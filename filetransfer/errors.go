package filetransfer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jinglekit/jinglekit/jingle"
)

// Errors a caller can branch on with errors.Is. A file's Result.Err wraps
// one of them in a *TransferError.
var (
	// ErrDeclined: the peer (or the local policy) declined the file.
	ErrDeclined = errors.New("filetransfer: declined")
	// ErrHashMismatch: the data does not match the hash the sender gave.
	ErrHashMismatch = errors.New("filetransfer: hash mismatch")
	// ErrUnverified: no hash the receiver could check was given in time.
	ErrUnverified = errors.New("filetransfer: no usable hash")
	// ErrTransport: the transport could not be set up or broke during the
	// transfer. When the session layer could not connect at all the error
	// also matches jingle.ErrTransportFailed.
	ErrTransport = errors.New("filetransfer: transport failure")
	// ErrTimeout: the peer did not answer in time.
	ErrTimeout = errors.New("filetransfer: timeout")
	// ErrCanceled: this side or the peer cancelled the file or the session.
	ErrCanceled = errors.New("filetransfer: canceled")
	// ErrTooLarge: the file exceeds a size limit, or the sender sent more
	// than it offered.
	ErrTooLarge = errors.New("filetransfer: file too large")
	// ErrNotAvailable: the peer has no file matching a request.
	ErrNotAvailable = errors.New("filetransfer: file not available")
	// ErrProtocol: the peer broke XEP-0234 (bad description, range…).
	ErrProtocol = errors.New("filetransfer: protocol error")
	// ErrIO: reading the source or writing the received file failed here.
	ErrIO = errors.New("filetransfer: local I/O error")
	// ErrSecurity: an encrypted content could not be secured (its
	// <security/> is not understood, its key cannot be decrypted, or the
	// data failed authentication).
	ErrSecurity = errors.New("filetransfer: security failure")
)

// NoteEncryptedRestart is the Result.Note of an encrypted file that a
// resume was asked for, or whose name had a .part from an earlier
// transfer: it was sent or received from the first byte.
const NoteEncryptedRestart = "encrypted transfers are not resumed: they restart from the first byte " +
	"(the data is authenticated only by the AES-GCM tag at its end, so the plaintext of an unfinished encrypted transfer is never kept)"

// ErrEncryptedResume is the cause (with ErrSecurity) of an encrypted file
// the receiver answered with a range that does not start at the first
// byte: an encrypted stream is one AES-GCM stream from the first byte to
// its tag, so it cannot start in the middle. See NoteEncryptedRestart.
var ErrEncryptedResume = errors.New("filetransfer: " + NoteEncryptedRestart)

// TransferError is the error of one file: what kind of failure it was (one
// of the Err… variables), the Jingle reason sent or received, if any, and
// the underlying cause.
type TransferError struct {
	Kind    error
	Content string
	Reason  *jingle.Reason
	Err     error
}

func (e *TransferError) Error() string {
	s := e.Kind.Error()
	if e.Content != "" {
		s += " (content " + e.Content + ")"
	}
	// The peer's reason says why (a limit it names, say); a local cause
	// that came first (our end of a connection the peer closed) follows.
	why := e.Reason != nil && e.Reason.Condition != jingle.ReasonSuccess
	switch {
	case why && e.Err != nil:
		s += ": " + e.Reason.Error() + "; here: " + e.Err.Error()
	case e.Err != nil:
		s += ": " + e.Err.Error()
	case e.Reason != nil:
		s += ": " + e.Reason.Error()
	}
	return s
}

// Unwrap returns the kind and the cause.
func (e *TransferError) Unwrap() []error {
	out := []error{e.Kind}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func newErr(kind error, content string, r *jingle.Reason, cause error) *TransferError {
	return &TransferError{Kind: kind, Content: content, Reason: r, Err: cause}
}

func errorf(kind error, content, format string, args ...any) *TransferError {
	return newErr(kind, content, nil, fmt.Errorf(format, args...))
}

// limitError is the cause of a refusal because a Limit was reached: it
// matches jingle.ErrLimit, and its text, which names the limit, goes into
// the reason sent to the peer.
type limitError struct{ msg string }

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Is(target error) bool { return target == jingle.ErrLimit }

// limitf is errorf for a refusal because a Limit was reached.
func limitf(kind error, content, format string, args ...any) *TransferError {
	return newErr(kind, content, nil, &limitError{fmt.Sprintf(format, args...)})
}

// kindOfReason maps a Jingle reason sent by the peer to an error kind.
// dataDone says whether this side had sent or received all the data.
func kindOfReason(r *jingle.Reason) error {
	if r == nil {
		return ErrCanceled
	}
	switch {
	case hasReasonExtra(r, CondFileTooLarge):
		return ErrTooLarge
	case hasReasonExtra(r, CondFileNotAvailable):
		return ErrNotAvailable
	}
	switch r.Condition {
	case jingle.ReasonDecline, jingle.ReasonBusy, jingle.ReasonUnsupportedApplications,
		jingle.ReasonIncompatibleParameters:
		return ErrDeclined
	case jingle.ReasonSecurityError:
		return ErrSecurity
	case jingle.ReasonMediaError:
		return ErrHashMismatch
	case jingle.ReasonFailedTransport, jingle.ReasonConnectivityError, jingle.ReasonUnsupportedTransports:
		return ErrTransport
	case jingle.ReasonTimeout, jingle.ReasonExpired:
		return ErrTimeout
	case jingle.ReasonFailedApplication, jingle.ReasonGeneralError:
		return ErrProtocol
	}
	return ErrCanceled
}

// reasonFor returns the reason this side sends for a failure kind.
func reasonFor(err *TransferError) jingle.Reason {
	r := jingle.Reason{Condition: jingle.ReasonGeneralError}
	switch err.Kind {
	case ErrDeclined:
		r.Condition = jingle.ReasonDecline
	case ErrHashMismatch, ErrUnverified:
		r.Condition = jingle.ReasonMediaError
	case ErrTooLarge:
		r.Condition = jingle.ReasonMediaError
		r.Extra = []jingle.Element{ReasonElement(CondFileTooLarge)}
	case ErrNotAvailable:
		r.Condition = jingle.ReasonFailedApplication
		r.Extra = []jingle.Element{ReasonElement(CondFileNotAvailable)}
	case ErrTransport:
		r.Condition = jingle.ReasonConnectivityError
	case ErrTimeout:
		r.Condition = jingle.ReasonTimeout
	case ErrCanceled:
		r.Condition = jingle.ReasonCancel
	case ErrProtocol:
		r.Condition = jingle.ReasonFailedApplication
	case ErrIO:
		r.Condition = jingle.ReasonGeneralError
	case ErrSecurity:
		r.Condition = jingle.ReasonSecurityError
	}
	// The kind, not the cause: a local error may name local paths. A
	// limit is named, so that the peer knows which one it reached.
	r.Text = strings.TrimPrefix(err.Kind.Error(), "filetransfer: ")
	var le *limitError
	if errors.As(err.Err, &le) {
		r.Text += ": " + le.msg
	}
	return r
}
