package filetransfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// Sender sends files. The zero value is ready to use; set the fields before
// the first Send.
type Sender struct {
	// Transports are transport namespaces in order of preference: the first
	// is offered and the others are fallbacks (transport-replace). Empty
	// means every method registered on the Manager, in registration order.
	// XEP-0234 wants In-Band Bytestreams last.
	Transports []string
	// Hashes are the algorithms announced (<hash-used/>) and sent in the
	// checksum, strongest-to-check first (default sha-256 and sha-1).
	Hashes []string
	// HashEncoding is how hash values are written: Base64 (XEP-0300, the
	// default) or HexBase64 for Libervia 0.9, which verifies only that.
	HashEncoding HashEncoding
	// Progress is called as each file advances, from the goroutine moving
	// its data: it must not block.
	Progress func(Progress)
	Timeouts Timeouts
	// Logger receives the Sender's logs; nil means slog.Default().
	Logger *slog.Logger
	// SID is the session id of the next Send, so that a jingle.Observer
	// can tell its transports from others'; empty lets the Manager pick
	// one. A Sender with a SID serves one Send at a time.
	SID string
	// Secure, when set, makes each file's content encrypted end to end: it
	// returns the content's <security/> element and the layer that
	// encrypts the stream (jet.Method.Offer, with an envelope such as
	// OMEMO). An error fails the Send before anything is offered.
	Secure func(ctx context.Context, peer jid.JID, content string) (jingle.Element, jingle.Security, error)
}

// Send sends files to peer with a zero Sender.
func Send(ctx context.Context, m *jingle.Manager, peer jid.JID, files ...Source) ([]Result, error) {
	var s Sender
	return s.Send(ctx, m, peer, files...)
}

// Send offers files to peer (a full JID) in one Jingle session, one content
// per file, and sends each accepted file on its content's transport while
// hashing it; the hashes follow in a <checksum/> (unless the Source had
// them), and the receiver's verdict — <received/>, content-remove or
// session-terminate — decides each Result. Send returns when every file is
// finished. Cancelling ctx cancels the session.
//
// The Manager must have a Handler registered (it routes the peer's
// session-info to the session). The returned error joins the files'
// errors; each Result has its own.
func (s *Sender) Send(ctx context.Context, m *jingle.Manager, peer jid.JID, files ...Source) ([]Result, error) {
	// The offer is made in its own call, so that its frame is off the
	// stack while the session runs: an idle session's goroutine then keeps
	// a small stack.
	e, results, err := s.offer(ctx, m, peer, files)
	if e == nil {
		return results, err
	}
	e.run()
	results = make([]Result, len(e.files))
	var errs []error
	for i, x := range e.files {
		results[i] = x.res
		if x.res.Err != nil {
			errs = append(errs, x.res.Err)
		}
	}
	return results, errors.Join(errs...)
}

// offer offers files to peer. It returns the engine to run, or the
// results and error of an offer that failed.
func (s *Sender) offer(ctx context.Context, m *jingle.Manager, peer jid.JID, files []Source) (*engine, []Result, error) {
	if len(files) == 0 {
		return nil, nil, errors.New("filetransfer: nothing to send")
	}
	if !slices.Contains(m.Features(), NS) {
		return nil, nil, errors.New("filetransfer: no Handler is registered on the Manager")
	}
	var xs []*xfer
	var offers []jingle.Offer
	for i, src := range files {
		key := jingle.ContentKey{Creator: jingle.CreatorInitiator, Name: "file" + strconv.Itoa(i)}
		x, d, terr := newSendXfer(key, NS, "", src, s.Hashes, s.HashEncoding)
		if terr != nil {
			return nil, nil, terr
		}
		el, err := jingle.NewElement(d)
		if err != nil {
			return nil, nil, fmt.Errorf("filetransfer: %w", err)
		}
		o := jingle.Offer{Name: key.Name, Senders: jingle.SendersInitiator, Description: el, Transports: s.Transports}
		if s.Secure != nil {
			sec, layer, err := s.Secure(ctx, peer, key.Name)
			if err != nil {
				return nil, nil, newErr(ErrSecurity, key.Name, nil, err)
			}
			o.Security, o.Layer = &sec, layer
			x.encrypted = true
		}
		xs = append(xs, x)
		offers = append(offers, o)
	}
	js, err := m.InitiateWith(ctx, peer, jingle.InitiateOptions{SID: s.SID}, offers...)
	if err != nil {
		results := make([]Result, len(files))
		for i, x := range xs {
			results[i] = Result{Peer: peer, Content: x.key.Name, Name: x.name, Size: x.size,
				Err: newErr(kindOfInitiateError(err), x.key.Name, nil, err)}
		}
		return nil, results, results[0].Err
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	e := newEngine(ctx, js, nil, log, s.Timeouts, s.Progress)
	for _, x := range xs {
		e.add(x)
	}
	return e, nil, nil
}

func kindOfInitiateError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ErrCanceled
	}
	return ErrDeclined
}
