package agent

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jet"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/omemo"
)

// Encryption modes of SendOptions.Encrypt (jinglectl send --encrypt).
const (
	EncryptAuto   = "auto"   // encrypt when the recipient can decrypt (OMEMO devices and JET)
	EncryptAlways = "always" // encrypt, or fail
	EncryptNever  = "never"
)

// ErrNoEncryption is returned when a file must be encrypted (--encrypt
// always) and cannot be: no OMEMO on this side, or the recipient has no
// OMEMO device or does not support JET-OMEMO. Its outcome is
// "unsupported".
var ErrNoEncryption = errors.New("end-to-end encryption (JET-OMEMO) is not possible")

// DefaultOMEMOStateFile is where an account's OMEMO state lives when
// omemo.state_file is not set: next to the agent's state file if there is
// one, else in $XDG_STATE_HOME/jinglectl (~/.local/state/jinglectl).
func DefaultOMEMOStateFile(cfg Config, account jid.JID) string {
	name := "omemo-" + strings.ReplaceAll(account.Bare().String(), "/", "_") + ".json"
	if cfg.StateFile != "" {
		return filepath.Join(filepath.Dir(cfg.StateFile), name)
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), fmt.Sprintf("jinglectl-%d", os.Getuid()), name)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "jinglectl", name)
}

// lazyEnvelope is the OMEMO envelope of the JET method, registered before
// the stream exists (the disco features are computed before logging in)
// and filled once OMEMO is open.
type lazyEnvelope struct {
	env atomic.Pointer[omemo.Envelope]
}

func (l *lazyEnvelope) Type() string       { return omemo.NS }
func (l *lazyEnvelope) Features() []string { return []string{omemo.NSJET} }

func (l *lazyEnvelope) get() (*omemo.Envelope, error) {
	if e := l.env.Load(); e != nil {
		return e, nil
	}
	return nil, errors.New("OMEMO is not available on this connection")
}

func (l *lazyEnvelope) Seal(ctx context.Context, peer jid.JID, key, iv []byte) (jingle.Element, error) {
	e, err := l.get()
	if err != nil {
		return jingle.Element{}, err
	}
	return e.Seal(ctx, peer, key, iv)
}

func (l *lazyEnvelope) Open(ctx context.Context, peer jid.JID, env jingle.Element) ([]byte, []byte, error) {
	e, err := l.get()
	if err != nil {
		return nil, nil, err
	}
	return e.Open(ctx, peer, env)
}

// newJET makes the JET security method with its (not yet open) OMEMO
// envelope.
func newJET() (*jet.Method, *lazyEnvelope) {
	env := &lazyEnvelope{}
	return &jet.Method{Envelopes: []jet.Envelope{env}}, env
}

// openOMEMO opens the account's OMEMO state and publishes the device. A
// failure leaves the connection without encryption (logged), as a server
// without PEP would.
func (c *Conn) openOMEMO(ctx context.Context, stream omemo.IQSender) {
	path := c.cfg.OMEMOStateFile
	if path == "" {
		path = DefaultOMEMOStateFile(c.cfg, stream.LocalAddr())
	}
	m, err := omemo.Open(path, stream, c.log)
	if err != nil {
		c.log.Warn("jinglectl: OMEMO unavailable: end-to-end encryption is off", "file", path, "error", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := m.Publish(pctx); err != nil {
		// Info, not a warning: many servers have no PEP, and then there is
		// just no encryption (--encrypt always says so).
		c.log.Info("jinglectl: cannot publish the OMEMO device (does the server have PEP?): end-to-end encryption is off", "error", err)
		return
	}
	c.omemo.Store(m)
	c.envelope.env.Store(&omemo.Envelope{OMEMO: m})
}

// OMEMO returns the connection's OMEMO state, nil when unavailable.
func (c *Conn) OMEMO() *omemo.Manager { return c.omemo.Load() }

// secureFor decides whether a send to peer is encrypted (mode: auto,
// always or never) and returns the filetransfer.Sender.Secure hook, or nil
// for plaintext.
func (c *Conn) secureFor(ctx context.Context, peer jid.JID, mode string) (func(context.Context, jid.JID, string) (jingle.Element, jingle.Security, error), error) {
	if mode == EncryptNever {
		return nil, nil
	}
	cannot := func(why string, args ...any) (func(context.Context, jid.JID, string) (jingle.Element, jingle.Security, error), error) {
		if mode == EncryptAlways {
			return nil, fmt.Errorf("%w: %s", ErrNoEncryption, fmt.Sprintf(why, args...))
		}
		c.log.Info("jinglectl: sending unencrypted", "peer", peer.String(), "why", fmt.Sprintf(why, args...))
		return nil, nil
	}
	om := c.OMEMO()
	if om == nil {
		return cannot("OMEMO is not available on this connection")
	}
	info, err := c.PeerInfo(ctx, peer)
	if err != nil {
		return cannot("cannot discover %s's features: %v", peer.String(), err)
	}
	if !info.HasFeature(jet.NS) || !info.HasFeature(omemo.NSJET) {
		return cannot("%s does not advertise JET-OMEMO (XEP-0391/0396)", peer.String())
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	devs, err := om.PeerDevices(dctx, peer)
	if err != nil || len(devs) == 0 {
		return cannot("%s's account has no OMEMO device (%v)", peer.Bare().String(), err)
	}
	return func(ctx context.Context, to jid.JID, content string) (jingle.Element, jingle.Security, error) {
		el, layer, err := c.jet.Offer(ctx, to, content, omemo.NS)
		if err != nil {
			if errors.Is(err, omemo.ErrNoDevices) {
				err = fmt.Errorf("%w: %w", ErrNoEncryption, err)
			}
			return jingle.Element{}, nil, err
		}
		return el, layer, nil
	}, nil
}

// keyTransport is an OMEMO key-transport element received in a message,
// decrypted off the stream's reading goroutine.
type keyTransport struct {
	from jid.JID
	e    omemo.Encrypted
}

// maxKeyTransport bounds the size of a message read for an OMEMO
// key-transport element (one key per device of an account).
const maxKeyTransport = 64 << 10

// keyTransportHandler is the mux option for OMEMO key-transport messages:
// the empty messages a peer device sends once it has decrypted one of our
// pre-key messages (omemo.Acknowledge; Conversations, Dino and jinglectl
// send them). Decrypting one ends our pre-key messages to that device.
// OMEMO chat messages (with a payload) are not read: jinglectl does not
// chat. Type normal is taken too (liberal).
func (c *Conn) keyTransportHandler() mux.Option {
	h := mux.MessageHandlerFunc(c.handleKeyTransport)
	name := xml.Name{Space: omemo.NS, Local: "encrypted"}
	return func(m *mux.ServeMux) {
		mux.Message(stanza.ChatMessage, name, h)(m)
		mux.Message(stanza.NormalMessage, name, h)(m)
	}
}

// handleKeyTransport implements mux.MessageHandlerFunc. It never returns
// an error for bad input (that would end the stream) and never blocks: the
// element is queued for keyTransportLoop, or dropped (logged) when the
// queue is full.
func (c *Conn) handleKeyTransport(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	if c.OMEMO() == nil || msg.From.Equal(jid.JID{}) {
		return nil
	}
	d := xml.NewTokenDecoder(&jingle.LimitReader{R: t, Max: maxKeyTransport})
	if tok, err := d.Token(); err != nil {
		return nil
	} else if _, ok := tok.(xml.StartElement); !ok {
		return nil
	}
	for {
		tok, err := d.Token()
		if err != nil {
			c.log.Debug("jinglectl: OMEMO message ignored", "from", msg.From.String(), "error", err)
			return nil
		}
		st, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end {
				return nil
			}
			continue
		}
		if st.Name.Space != omemo.NS || st.Name.Local != "encrypted" {
			if err := d.Skip(); err != nil {
				return nil
			}
			continue
		}
		var e omemo.Encrypted
		if err := d.DecodeElement(&e, &st); err != nil {
			c.log.Debug("jinglectl: bad OMEMO element", "from", msg.From.String(), "error", err)
			return nil
		}
		if e.Payload != nil {
			c.log.Debug("jinglectl: OMEMO chat message ignored", "from", msg.From.String())
			return nil
		}
		select {
		case c.keyTransports <- keyTransport{from: msg.From, e: e}:
		default:
			c.log.Warn("jinglectl: too many OMEMO key-transport messages waiting: one dropped", "from", msg.From.String())
		}
		return nil
	}
}

// keyTransportLoop decrypts the queued key-transport elements until the
// connection ends. Its owner is the Conn (watchW).
func (c *Conn) keyTransportLoop() {
	defer c.watchW.Done()
	for {
		select {
		case <-c.life.Done():
			return
		case kt := <-c.keyTransports:
			om := c.OMEMO()
			if om == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(c.life, 20*time.Second)
			err := om.ReceiveKeyTransport(ctx, kt.from, kt.e)
			cancel()
			if err != nil {
				c.log.Info("jinglectl: OMEMO key-transport message not used", "from", kt.from.String(), "error", err)
			}
		}
	}
}
