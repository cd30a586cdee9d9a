package agent

import (
	"context"
	"errors"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Event types. Every file of a transfer gets "offered" first and exactly
// one of "done" or "error" last.
const (
	EventOffered         = "offered"          // a file was offered (by us or to us)
	EventAccepted        = "accepted"         // the receiver accepted it
	EventDeclined        = "declined"         // the receiver (or our policy) declined it; "error" follows
	EventTransport       = "transport"        // the transport connected
	EventTransportFailed = "transport-failed" // a transport failed; a fallback may follow
	EventProgress        = "progress"         // bytes moved (throttled, ≤ 5 per second per file)
	EventChecksum        = "checksum"         // the file's hash, as computed here
	EventVerified        = "verified"         // the receiver's hash check passed
	EventDone            = "done"             // the file was received and verified
	EventError           = "error"            // the file (or the command) failed
	EventQueued          = "queued"           // agent: a file was queued for sending
	EventRetry           = "retry"            // agent: the attempt failed, the file will be tried again
)

// Outcomes of a file, in Event.Outcome.
const (
	OutcomeOK           = "ok"
	OutcomeDeclined     = "declined"
	OutcomeTransport    = "transport"
	OutcomeHashMismatch = "hash-mismatch"
	OutcomeTimeout      = "timeout"
	OutcomeCanceled     = "canceled"
	OutcomeTooLarge     = "too-large"
	OutcomeOffline      = "offline"
	OutcomeUnsupported  = "unsupported"
	OutcomeAuth         = "auth"
	OutcomeConnect      = "connect"
	OutcomeIO           = "io"
	OutcomeProtocol     = "protocol"
	OutcomeSecurity     = "security" // encryption refused or the data failed authentication
	OutcomeFailed       = "failed"
)

// Directions.
const (
	Send    = "send"
	Receive = "receive"
)

// Hash is a digest as events show it.
type Hash struct {
	Algo  string `json:"algo"`
	Value string `json:"value"` // lower-case hex
}

// Event is one step of a file transfer, written by jinglectl --json as one
// JSON object per line and streamed by the agent's control socket. Field
// names are stable; fields that do not apply are omitted.
type Event struct {
	Event     string    `json:"event"`
	Time      time.Time `json:"time"`
	ID        string    `json:"id,omitempty"`        // the file's id: index on the command line, agent transfer id, or sid/content
	Direction string    `json:"direction,omitempty"` // send | receive
	Peer      string    `json:"peer,omitempty"`      // the other party's JID
	SID       string    `json:"sid,omitempty"`       // Jingle session id
	Content   string    `json:"content,omitempty"`   // Jingle content name
	File      string    `json:"file,omitempty"`      // the name as offered
	Path      string    `json:"path,omitempty"`      // local path (source, or where it was received)
	Size      int64     `json:"size,omitempty"`      // the file's size in bytes
	Offset    int64     `json:"offset,omitempty"`    // where this session started in the file (a resume)
	Bytes     int64     `json:"bytes,omitempty"`     // how much of the file is sent or on disk
	Rate      float64   `json:"rate,omitempty"`      // bytes per second, average of this session
	ETA       float64   `json:"eta,omitempty"`       // seconds left, estimated
	Transport string    `json:"transport,omitempty"` // ibb | s5b | ice | the namespace of another transport
	Route     string    `json:"route,omitempty"`     // s5b-direct | s5b-proxy | ice-host | ice-relay | ibb (Route*)
	Hash      *Hash     `json:"hash,omitempty"`
	Verified  bool      `json:"verified,omitempty"`
	Encrypted bool      `json:"encrypted,omitempty"` // end to end (XEP-0391 JET with OMEMO)
	Note      string    `json:"note,omitempty"`      // on done and error: what the user should know (filetransfer.Result.Note)
	Duration  float64   `json:"duration,omitempty"`  // seconds
	Outcome   string    `json:"outcome,omitempty"`   // on done and error
	Error     string    `json:"error,omitempty"`
	Attempt   int       `json:"attempt,omitempty"`  // agent: the attempt (1 for the first)
	RetryIn   float64   `json:"retry_in,omitempty"` // agent, on retry: seconds until the next attempt
}

// Terminal reports whether e ends its file.
func (e Event) Terminal() bool { return e.Event == EventDone || e.Event == EventError }

// TransportName returns the short name of a transport namespace.
func TransportName(ns string) string {
	switch ns {
	case ibb.NSTransport:
		return TransportIBB
	case socks5.NS:
		return TransportS5B
	case ice.NSICEUDP, ice.NSWebRTCDataChannel:
		return TransportICE
	}
	return ns
}

// Outcome classifies the error of a file or a command.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrRecipientOffline):
		return OutcomeOffline
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrNoEncryption):
		return OutcomeUnsupported
	case errors.Is(err, filetransfer.ErrSecurity):
		return OutcomeSecurity
	case errors.Is(err, ErrNoCommonTransport), errors.Is(err, ErrTransportNotAvailable):
		return OutcomeTransport
	case errors.Is(err, xmppclient.ErrAuth):
		return OutcomeAuth
	case errors.Is(err, xmppclient.ErrConnect), errors.Is(err, xmppclient.ErrTLS), errors.Is(err, xmppclient.ErrNoMechanism),
		errors.Is(err, xmppclient.ErrDisconnected):
		return OutcomeConnect
	case errors.Is(err, filetransfer.ErrDeclined):
		return OutcomeDeclined
	case errors.Is(err, filetransfer.ErrHashMismatch), errors.Is(err, filetransfer.ErrUnverified):
		return OutcomeHashMismatch
	case errors.Is(err, filetransfer.ErrTooLarge):
		return OutcomeTooLarge
	case errors.Is(err, filetransfer.ErrTransport), errors.Is(err, jingle.ErrTransportFailed):
		return OutcomeTransport
	case errors.Is(err, filetransfer.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, filetransfer.ErrCanceled), errors.Is(err, context.Canceled), errors.Is(err, ErrShutdown):
		return OutcomeCanceled
	case errors.Is(err, filetransfer.ErrIO):
		return OutcomeIO
	case errors.Is(err, filetransfer.ErrProtocol), errors.Is(err, filetransfer.ErrNotAvailable):
		return OutcomeProtocol
	}
	return OutcomeFailed
}

// Retryable reports whether an agent should try a file with this outcome
// again later: the peer or the network may come back.
func Retryable(outcome string) bool {
	switch outcome {
	case OutcomeTransport, OutcomeTimeout, OutcomeOffline, OutcomeConnect, OutcomeCanceled, OutcomeProtocol, OutcomeFailed:
		return true
	}
	return false
}

// ErrMetricsListen reports that the metrics address could not be listened
// on (in use, not local…).
var ErrMetricsListen = errors.New("cannot serve metrics")

// Errors of peer resolution and transport choice.
var (
	// ErrRecipientOffline: no online resource of the recipient is visible,
	// or the full JID given does not answer.
	ErrRecipientOffline = errors.New("recipient offline")
	// ErrUnsupported: the recipient does not advertise Jingle file
	// transfer.
	ErrUnsupported = errors.New("recipient does not support Jingle file transfer")
	// ErrNoCommonTransport: the recipient advertises none of the transports
	// allowed.
	ErrNoCommonTransport = errors.New("no common transport")
	// ErrTransportNotAvailable: the transport asked for is not implemented.
	ErrTransportNotAvailable = errors.New("transport not available")
	// ErrShutdown: the agent is stopping.
	ErrShutdown = errors.New("agent shutting down")
)
