package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jet"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/omemo"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// CapsNode is the XEP-0115 node jinglectl advertises.
const CapsNode = "https://github.com/jinglekit/jinglekit"

// ReceiveOptions make a Conn accept files.
type ReceiveOptions struct {
	// Dir is where files are received. It must exist.
	Dir string
	// AcceptFrom lists the senders whose offers are taken: a bare JID
	// allows all its resources, a full JID only that one. When empty, the
	// roster contacts with a mutual subscription are allowed. Anyone else
	// is declined.
	AcceptFrom []jid.JID
	// MaxSize is the largest file taken (0: filetransfer's default).
	MaxSize int64
	// OnSession is called when an incoming session is over (from the
	// session's goroutine: return promptly).
	OnSession func(SessionSummary)
	// NewID names a received file in events (default "sid/content").
	NewID func(sid, content string) string
}

// Options configure Connect.
type Options struct {
	// Config gives the account and the transfer settings.
	Config Config
	// Receive, when set, accepts files; otherwise every offer is declined.
	Receive *ReceiveOptions
	// OnEvent receives the events of incoming sessions.
	OnEvent func(Event)
	// Priority is the presence priority (-128…127).
	Priority int
	// IdentityType is the disco identity type (category "client"): "bot"
	// by default.
	IdentityType string
	// Logger receives the logs; default slog.Default().
	Logger *slog.Logger
}

// Conn is one logged-in XMPP connection with Jingle file transfer wired:
// the client, a jingle.Manager with the file-transfer application and the
// SOCKS5, ICE and IBB transports, the presence of contacts and the roster.
type Conn struct {
	client   *xmppclient.Client // nil in serverless mode (ConnectLocal)
	link     link               // the client, or the link-local node
	node     *linklocal.Node    // serverless mode only
	m        *jingle.Manager
	disco    *xmppclient.Disco
	presence *presenceTracker
	roster   *roster
	hub      *hub
	ibb      *ibb.Method
	s5b      *socks5.Method
	ice      []*ice.Method // one per dialect, preferred first
	jet      *jet.Method   // XEP-0391, with the OMEMO envelope
	envelope *lazyEnvelope
	omemo    atomic.Pointer[omemo.Manager] // nil until open, or when unavailable
	// keyTransports queues the OMEMO key-transport elements received
	// (keyTransportHandler) for keyTransportLoop.
	keyTransports chan keyTransport
	cfg           Config
	log           *slog.Logger

	life   context.Context // cancelled when the stream ends or Close is called
	cancel context.CancelFunc
	sends  sync.WaitGroup
	watchW sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// RandomResource returns "jinglectl-" and 8 random hex digits.
func RandomResource() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "jinglectl-" + hex.EncodeToString(b)
}

// AccountJID parses the configured JID: it needs a localpart; without a
// resourcepart a random one is added.
func AccountJID(s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, errors.New("no account: give --jid, $" + EnvJID + " or jid in the configuration file")
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("account JID %q: %w", s, err)
	}
	if j.Localpart() == "" {
		return jid.JID{}, fmt.Errorf("account JID %q has no user part (want user@domain)", s)
	}
	if j.Resourcepart() == "" {
		j, err = j.WithResource(RandomResource())
		if err != nil {
			return jid.JID{}, err
		}
	}
	return j, nil
}

// Connect logs in and wires Jingle file transfer. ctx bounds the login.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	cfg := o.Config.WithDefaults()
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	account, err := AccountJID(cfg.JID)
	if err != nil {
		return nil, err
	}
	if cfg.Password == "" {
		return nil, errors.New("no password: set $" + EnvPassword + " or give --password-file")
	}
	h := newHub()
	c := &Conn{cfg: cfg, log: log, hub: h, roster: newRoster(), keyTransports: make(chan keyTransport, 16)}
	c.disco = xmppclient.NewDisco(xmppclient.DiscoConfig{Logger: log})
	c.presence = newPresenceTracker(c.disco)

	c.m = &jingle.Manager{Logger: log, Observer: h}
	// Issue 13, D4: the sessions of a peer whose presence becomes
	// unavailable end at once (reason gone), so that its .part files are
	// released and a resend resumes them, instead of waiting for the idle
	// timeout.
	c.presence.onGone = func(j jid.JID) { c.m.PeerGone(j) }
	ft := &filetransfer.Handler{Logger: log, Progress: h.progress}
	ft.Timeouts.Connect = cfg.ConnectTimeout
	rcv := c.newReceiver(o, ft)
	c.s5b = socks5.NewMethod(c.s5bSettings(log))
	// One XMPP stream: its reader hands IBB payloads to the Method past
	// the XML decoder, its writer puts the Method's past the XML encoder
	// (ibb.Payloads).
	c.ibb = &ibb.Method{Logger: log, OpenTimeout: c.cfg.ConnectTimeout, Payloads: ibb.NewPayloads()}
	c.ice = iceMethods(cfg.ICEConfig(log))
	c.jet, c.envelope = newJET()
	if err := c.register(rcv); err != nil {
		return nil, err
	}
	if err := c.m.RegisterSecurity(c.jet); err != nil {
		return nil, err
	}

	idType := o.IdentityType
	if idType == "" {
		idType = "bot"
	}
	features := c.m.Features()
	caps := xmppclient.Caps{
		Node:       CapsNode,
		Identities: []xmppclient.Identity{{Category: "client", Type: idType, Name: "jinglectl"}},
		Features:   features,
	}
	handler := mux.New(stanza.NSClient,
		c.m.Handler(),
		c.ibb.Handler(),
		xmppclient.HandleDisco(caps),
		c.presence.handler(),
		c.roster.handler(),
		c.keyTransportHandler(),
	)
	client, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID:                account,
		Password:           cfg.Password,
		Servers:            cfg.Servers,
		CAFile:             cfg.CAFile,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		Handler:            handler,
		Caps:               caps,
		Logger:             log,
		ReadFilter:         c.ibb.Payloads.Filter,
		WriteFilter:        c.ibb.Payloads.WriteFilter,
	})
	if err != nil {
		return nil, err
	}
	c.client = client
	c.link = client
	self := client.LocalAddr()
	c.presence.self = self
	c.roster.self = self
	gone, stopGone := context.WithCancel(context.Background())
	c.m.SetStream(streamSender{Session: client.Session(), gone: gone, client: client})
	c.openOMEMO(ctx, streamSender{Session: client.Session(), gone: gone, client: client})
	c.life, c.cancel = context.WithCancel(context.Background())
	c.watchW.Add(1)
	go func() {
		defer c.watchW.Done()
		select {
		case <-client.Done():
			c.cancel()
		case <-c.life.Done():
			<-client.Done() // Close ends the stream last
		}
		stopGone()
	}()
	c.watchW.Add(1)
	go c.keyTransportLoop()

	if err := c.roster.fetch(ctx, client.Session()); err != nil {
		log.Warn("jinglectl: cannot fetch the roster", "error", err)
	}
	if err := c.sendPresence(ctx, o.Priority, caps); err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("sending presence: %w", err)
	}
	return c, nil
}

// newReceiver is the application registered on the Manager: ft, with the
// hub told about each incoming session and o.Receive's policy (nobody
// without it; mutual roster contacts by default).
func (c *Conn) newReceiver(o Options, ft *filetransfer.Handler) *receiver {
	rcv, allow := newReceiver(c.hub, ft, o.Receive, o.OnEvent)
	rcv.allowed = func(jid.JID) bool { return false }
	if o.Receive != nil {
		rcv.allowed = func(from jid.JID) bool {
			if len(allow) == 0 {
				return c.roster.mutual(from)
			}
			return listed(allow, from)
		}
	}
	ft.Policy = rcv.policy
	ft.Done = rcv.done
	return rcv
}

// register registers the file transfer application and the transport
// methods on the Manager. Registration order is the order of preference
// (TransportPreference): SOCKS5, then ICE, then IBB (XEP-0234 wants IBB
// last).
func (c *Conn) register(app jingle.Application) error {
	errs := []error{c.m.RegisterApplication(app), c.m.RegisterTransport(c.s5b)}
	for _, m := range c.ice {
		errs = append(errs, c.m.RegisterTransport(m))
	}
	errs = append(errs, c.m.RegisterTransport(c.ibb))
	return errors.Join(errs...)
}

func (c *Conn) s5bSettings(log *slog.Logger) socks5.Settings {
	s := socks5.Settings{
		AllowLoopback:    c.cfg.AllowLoopback,
		NoDirect:         c.cfg.NoDirect,
		NoProxyDiscovery: c.cfg.NoProxy || len(c.cfg.Proxies) > 0,
		Logger:           log,
	}
	if !c.cfg.NoProxy {
		for _, p := range c.cfg.Proxies {
			if j, err := jid.Parse(p); err == nil {
				s.Proxies = append(s.Proxies, socks5.Proxy{JID: j})
			}
		}
	}
	return s
}

// sendPresence broadcasts available presence with caps and priority.
func (c *Conn) sendPresence(ctx context.Context, priority int, caps xmppclient.Caps) error {
	priority = max(-128, min(127, priority))
	payload := xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(strconv.Itoa(priority))), xml.StartElement{Name: xml.Name{Local: "priority"}}),
		caps.TokenReader(),
	)
	return c.client.Session().Send(ctx, stanza.Presence{}.Wrap(payload))
}

// Server is the "host:port" the connection goes through ("" in serverless
// mode).
func (c *Conn) Server() string {
	if c.client == nil {
		return ""
	}
	return c.client.Server()
}

// LocalAddr is the full JID of the connection.
func (c *Conn) LocalAddr() jid.JID { return c.link.LocalAddr() }

// Done is closed when the stream has ended (or Close was called).
func (c *Conn) Done() <-chan struct{} { return c.life.Done() }

// Err says why the stream ended, once Done is closed.
func (c *Conn) Err() error { return c.link.Err() }

// Manager returns the Jingle manager.
func (c *Conn) Manager() *jingle.Manager { return c.m }

// ActiveSessions is the number of live Jingle sessions.
func (c *Conn) ActiveSessions() int { return len(c.m.Sessions()) }

// CancelFile cancels a file in progress by its event id.
func (c *Conn) CancelFile(id string) bool { return c.hub.cancelFile(id) }

// Close ends in-flight sends (session-terminate with cancel), terminates
// the other live sessions (reason gone; received .part files are kept for
// a resume), and logs out. ctx bounds the whole.
func (c *Conn) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.cancel()
		done := make(chan struct{})
		go func() { c.sends.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
		}
		var errs []error
		if err := c.m.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := c.link.Close(); err != nil && !errors.Is(err, io.EOF) {
			errs = append(errs, err)
		}
		c.watchW.Wait()
		<-done
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Outgoing is one file to send.
type Outgoing struct {
	// ID names the file in events.
	ID string
	// Path is the local path, shown in events.
	Path   string
	Source filetransfer.Source
}

// SendOptions tune one Send.
type SendOptions struct {
	// Transports are the transport namespaces to offer, in order (see
	// ChooseTransports).
	Transports []string
	// LimitRate bounds the sending rate of each file in bytes per second.
	LimitRate int64
	// Timeouts of the transfer (zero: filetransfer's defaults).
	Timeouts filetransfer.Timeouts
	// FilesPerSession is the number of files offered in one session (zero:
	// the configuration's).
	FilesPerSession int
	// Encrypt is EncryptAuto (the default), EncryptAlways or
	// EncryptNever: end-to-end encryption with JET-OMEMO.
	Encrypt string
}

// Send offers files to peer (a full JID) and sends them, in sessions of
// at most FilesPerSession files one after another, so that any number of
// files fits the receiver's limit of files per session.
// emit gets every event of the files ("offered" first, "done" or "error"
// last for each); it is called from several goroutines, one at a time per
// file, and must not block. Send returns when all files are finished, or
// ctx is cancelled, or the connection is lost.
func (c *Conn) Send(ctx context.Context, peer jid.JID, files []Outgoing, o SendOptions, emit func(Event)) ([]filetransfer.Result, error) {
	per := o.FilesPerSession
	if per <= 0 {
		per = c.cfg.FilesPerSession
	}
	if per <= 0 || len(files) <= per {
		return c.sendSession(ctx, peer, files, o, emit)
	}
	var results []filetransfer.Result
	var errs []error
	for start := 0; start < len(files); start += per {
		// A cancelled ctx or a lost connection makes each remaining
		// session fail at once, so every file still gets its events.
		res, err := c.sendSession(ctx, peer, files[start:min(start+per, len(files))], o, emit)
		results = append(results, res...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return results, errors.Join(errs...)
}

// sendSession sends files in one session.
func (c *Conn) sendSession(ctx context.Context, peer jid.JID, files []Outgoing, o SendOptions, emit func(Event)) ([]filetransfer.Result, error) {
	select {
	case <-c.life.Done():
		return nil, fmt.Errorf("%w: not connected", filetransfer.ErrTransport)
	default:
	}
	c.sends.Add(1)
	defer c.sends.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()

	var mu sync.Mutex
	safeEmit := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		emit(e)
	}
	w := &watch{dir: Send, peer: peer, sid: jingle.NewSID(), emit: safeEmit, byContent: map[string]*fileRef{}}
	srcs := make([]filetransfer.Source, len(files))
	for i, f := range files {
		w.files = append(w.files, &fileRef{id: f.ID, name: f.Source.Name, path: f.Path, size: f.Source.Size})
		src := f.Source
		if o.LimitRate > 0 && src.Open != nil {
			open, rate := src.Open, o.LimitRate
			src.Open = func() (io.ReadCloser, error) {
				rc, err := open()
				if err != nil {
					return nil, err
				}
				return newThrottled(ctx, rc, rate), nil
			}
		}
		srcs[i] = src
	}
	secure, err := c.secureFor(ctx, peer, o.Encrypt)
	if err != nil {
		for _, f := range w.files {
			e := w.event(EventError, f)
			e.Outcome, e.Error = Outcome(err), err.Error()
			safeEmit(e)
		}
		return nil, err
	}
	for _, f := range w.files {
		f.encrypted = secure != nil
		safeEmit(w.event(EventOffered, f))
	}
	if o.Timeouts.Connect <= 0 {
		o.Timeouts.Connect = c.cfg.ConnectTimeout
	}
	sender := filetransfer.Sender{Transports: o.Transports, Progress: c.hub.progress, Timeouts: o.Timeouts, Logger: c.log,
		SID: w.sid, Secure: secure}
	callerCtx := ctx
	c.hub.watchSend(w)
	defer c.hub.remove(w.sid)
	results, err := sender.Send(ctx, c.m, peer, srcs...)
	if lost := c.link.Err(); lost != nil && callerCtx.Err() != nil {
		// The stream ended under the transfer: say so rather than
		// "cancelled".
		for i := range results {
			if r := results[i].Err; r != nil && errors.Is(r, filetransfer.ErrCanceled) {
				results[i].Err = fmt.Errorf("connection lost (%v): %w: %w", lost, xmppclient.ErrDisconnected, r)
			}
		}
		if err != nil {
			err = fmt.Errorf("connection lost (%v): %w: %w", lost, xmppclient.ErrDisconnected, err)
		}
	}
	for i, r := range results {
		var f *fileRef
		if i < len(w.files) {
			f = w.files[i]
		}
		if ff := w.byContent[r.Content]; ff != nil {
			f = ff
		}
		w.finish(f, r)
	}
	if len(results) == 0 && err != nil {
		for _, f := range w.files {
			e := w.event(EventError, f)
			e.Outcome, e.Error = Outcome(err), err.Error()
			safeEmit(e)
		}
	}
	return results, err
}

// streamSender is the stream the Manager and the transports send on: once
// the XMPP stream has ended, the IQs still waiting for an answer give up
// at once instead of at their timeout (mellium does not end them), so a
// session whose stream is gone finishes promptly. What nothing waits on
// goes out through the Client's IQ tracker (jingle.AsyncIQSender), with
// no goroutine waiting for the answer; the tracker fails what is in
// flight when the stream ends.
type streamSender struct {
	*xmpp.Session
	gone   context.Context
	client *xmppclient.Client
}

var _ jingle.AsyncIQSender = streamSender{}

// SendIQFunc implements jingle.AsyncIQSender.
func (s streamSender) SendIQFunc(ctx context.Context, payload xml.TokenReader, iq stanza.IQ, wait time.Duration, answer func(xml.TokenReader, error)) error {
	return s.client.SendIQFunc(ctx, payload, iq, wait, answer)
}

func (s streamSender) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.gone, cancel)
	defer stop()
	r, err := s.Session.SendIQElement(ctx, payload, iq)
	if err != nil && s.gone.Err() != nil {
		return nil, fmt.Errorf("%w: %w", xmppclient.ErrDisconnected, err)
	}
	return r, err
}

// throttled limits the rate of a reader.
type throttled struct {
	ctx   context.Context
	r     io.ReadCloser
	rate  int64
	start time.Time
	n     int64
}

func newThrottled(ctx context.Context, r io.ReadCloser, rate int64) *throttled {
	return &throttled{ctx: ctx, r: r, rate: rate, start: time.Now()}
}

func (t *throttled) Read(p []byte) (int, error) {
	chunk := max(t.rate/20, 512)
	if int64(len(p)) > chunk {
		p = p[:chunk]
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	due := t.start.Add(time.Duration(float64(t.n) / float64(t.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-t.ctx.Done():
			tm.Stop()
			return n, t.ctx.Err()
		}
	}
	return n, err
}

func (t *throttled) Close() error { return t.r.Close() }
