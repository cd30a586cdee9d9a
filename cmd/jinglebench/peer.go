package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Env is what a bench process needs to reach the server and its two
// accounts. The parent passes it to its children (re-exec) as JSON.
type Env struct {
	C2SAddr string  `json:"c2s"`
	CAFile  string  `json:"ca"`
	Alice   Account `json:"alice"`
	Bob     Account `json:"bob"`
	// Dir is the directory under which receivers get their directories.
	Dir string `json:"dir"`
}

// Account is a bare JID and its password.
type Account struct {
	JID      string `json:"jid"`
	Password string `json:"password"`
}

// peerConfig is how one logged-in peer is set up. Each configuration logs
// in with its own resource, so that every case has fresh Managers and
// transport methods with exactly the settings it measures.
type peerConfig struct {
	resource string
	s5b      socks5.Settings
	// ibbBlock and ibbWindow are the IBB Method's BlockSize and Window
	// (0: the defaults).
	ibbBlock, ibbWindow int
	// ibbXMLPath leaves IBB payloads on the XML decoder's and encoder's
	// paths instead of taking them out of the stream and putting them in
	// past the encoder (ibb.Payloads), for comparison.
	ibbXMLPath bool
	// ice registers the ICE methods (both dialects) with the default,
	// tuned ice.Config, loopback host candidates and no STUN/TURN server.
	ice    bool
	limits jingle.Limits
	// probe records, on the receiving side, when each file's first byte
	// arrives (Handler.Progress); off, Progress is nil, as it costs a call
	// per chunk.
	probe bool
	// timeouts are the Handler's and the Sender's (zero: the defaults).
	timeouts filetransfer.Timeouts
}

// peer is one logged-in client with a Jingle Manager, SOCKS5 and IBB
// transports, a file-transfer Handler and the bench's sink application.
type peer struct {
	jid  jid.JID
	c    *xmppclient.Client
	m    *jingle.Manager
	h    *filetransfer.Handler
	sink *sinkApp
	dir  string
	t    filetransfer.Timeouts

	mu        sync.Mutex
	waiters   map[string]chan filetransfer.Result
	firstByte sync.Map // file name → time.Time
}

// login logs acct in with cfg and returns the peer; close it with close.
func login(ctx context.Context, env *Env, acct Account, cfg peerConfig, log *slog.Logger) (*peer, error) {
	addr, err := jid.Parse(acct.JID + "/" + cfg.resource)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(env.Dir, "recv-")
	if err != nil {
		return nil, err
	}
	p := &peer{
		jid:     addr,
		m:       &jingle.Manager{Limits: cfg.limits, Logger: log},
		dir:     dir,
		t:       cfg.timeouts,
		waiters: map[string]chan filetransfer.Result{},
		sink:    &sinkApp{log: log},
	}
	p.h = &filetransfer.Handler{
		Dir:    dir,
		Policy: filetransfer.AcceptAll,
		Done:   p.done,
		// The 10 GiB stream is above the default 8 GiB.
		Limits:         filetransfer.Limits{MaxFileSize: 1 << 40},
		DiscardPartial: true,
		NoResume:       true,
		Timeouts:       cfg.timeouts,
		Logger:         log,
	}
	if cfg.probe {
		p.h.Progress = func(pr filetransfer.Progress) {
			if pr.Transferred > 0 {
				p.firstByte.LoadOrStore(pr.Name, time.Now())
			}
		}
	}
	s5 := cfg.s5b
	s5.AllowLoopback = true
	s5.Logger = log
	ibbm := &ibb.Method{BlockSize: cfg.ibbBlock, Window: cfg.ibbWindow, Logger: log}
	var (
		readFilter  func(io.Reader) io.Reader
		writeFilter func(io.Writer) io.Writer
	)
	if !cfg.ibbXMLPath {
		ibbm.Payloads = ibb.NewPayloads()
		readFilter, writeFilter = ibbm.Payloads.Filter, ibbm.Payloads.WriteFilter
	}
	errs := []error{p.m.RegisterApplication(p.h), p.m.RegisterApplication(p.sink),
		p.m.RegisterTransport(socks5.NewMethod(s5))}
	if cfg.ice {
		ic := ice.Config{IncludeLoopback: true, Logger: log}
		errs = append(errs, p.m.RegisterTransport(&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: ic}),
			p.m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343, Config: ic}))
	}
	errs = append(errs, p.m.RegisterTransport(ibbm))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	caps := xmppclient.Caps{Features: p.m.Features()}
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: addr, Password: acct.Password, Server: env.C2SAddr, CAFile: env.CAFile,
		Caps: caps, Logger: log, ReadFilter: readFilter, WriteFilter: writeFilter,
		Handler: mux.New(stanza.NSClient, p.m.Handler(), ibbm.Handler(), xmppclient.HandleDisco(caps)),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("login %s: %w", addr, err)
	}
	p.c = c
	// The Client, not its session: it sends what nothing waits on
	// without a goroutine per IQ (jingle.AsyncIQSender).
	p.m.SetStream(c)
	return p, nil
}

// close ends the peer's sessions, logs out and removes its directory.
func (p *peer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := p.m.Close(ctx)
	err = errors.Join(err, p.c.Close())
	return errors.Join(err, os.RemoveAll(p.dir))
}

// loginPair logs in alice and bob with the same configuration.
func loginPair(ctx context.Context, env *Env, cfg peerConfig, log *slog.Logger) (alice, bob *peer, err error) {
	alice, err = login(ctx, env, env.Alice, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	bob, err = login(ctx, env, env.Bob, cfg, log)
	if err != nil {
		alice.close()
		return nil, nil, err
	}
	return alice, bob, nil
}

// done is the Handler's Done: it hands the result to whoever expects the
// file, or removes the file.
func (p *peer) done(r filetransfer.Result) {
	p.mu.Lock()
	ch := p.waiters[r.Name]
	delete(p.waiters, r.Name)
	p.mu.Unlock()
	if ch != nil {
		ch <- r
		return
	}
	if r.Path != "" {
		os.Remove(r.Path)
	}
}

// receiver is the receiving end of sendFile: a peer in this process or
// in a child process (remote).
type receiver interface {
	addr() jid.JID
	// expect announces the file named name, with punchHoles on its .part
	// when punch is set, and returns a function that waits for the
	// receiver's verdict: nil when the file arrived whole and verified
	// over transport ns. The received file is removed.
	expect(name string, size int64, ns string, punch bool) (wait func(context.Context) error)
}

func (p *peer) addr() jid.JID { return p.jid }

func (p *peer) expect(name string, size int64, ns string, punch bool) func(context.Context) error {
	ch := make(chan filetransfer.Result, 1)
	p.mu.Lock()
	p.waiters[name] = ch
	p.mu.Unlock()
	var stopPunch func() error
	if punch {
		stopPunch = punchHoles(context.Background(), p.dir, name+".part")
	}
	return func(ctx context.Context) error {
		var err error
		var r filetransfer.Result
		select {
		case r = <-ch:
			err = checkReceived(r, size, ns)
		case <-ctx.Done():
			p.mu.Lock()
			delete(p.waiters, name)
			p.mu.Unlock()
			err = ctx.Err()
		}
		if stopPunch != nil {
			if perr := stopPunch(); perr != nil {
				err = errors.Join(err, fmt.Errorf("punching holes: %w", perr))
			}
		}
		if r.Path != "" {
			os.Remove(r.Path)
		}
		return err
	}
}

// checkReceived checks the receiver's Result of a file.
func checkReceived(r filetransfer.Result, size int64, ns string) error {
	switch {
	case r.Err != nil:
		return fmt.Errorf("receive %s: %w", r.Name, r.Err)
	case !r.Verified:
		return fmt.Errorf("receive %s: not verified", r.Name)
	case r.Transport != ns:
		return fmt.Errorf("receive %s: carried by %s, want %s", r.Name, r.Transport, ns)
	case r.Bytes != size:
		return fmt.Errorf("receive %s: %d bytes, want %d", r.Name, r.Bytes, size)
	}
	return nil
}

// transfer is the outcome of one file sent with sendFile.
type transfer struct {
	Start   time.Time
	Elapsed time.Duration // from Send to Send's return
	Sent    filetransfer.Result
}

// sendFile sends src from a to b over the transport ns with sha-256 only
// (the hash of the baseline) and waits for b's verdict. Both sides must
// report the file verified, over ns. punch, when set, keeps the received
// file's disk use bounded while it arrives (see punchHoles).
func sendFile(ctx context.Context, a *peer, b receiver, ns string, src filetransfer.Source, punch bool) (transfer, error) {
	return sendFileWith(ctx, a, b, ns, src, punch, nil)
}

// sendFileWith is sendFile with the Sender's Secure hook (nil: plaintext).
func sendFileWith(ctx context.Context, a *peer, b receiver, ns string, src filetransfer.Source, punch bool,
	secure func(context.Context, jid.JID, string) (jingle.Element, jingle.Security, error)) (transfer, error) {
	wait := b.expect(src.Name, src.Size, ns, punch)
	s := filetransfer.Sender{Transports: []string{ns}, Hashes: []string{filetransfer.SHA256}, Secure: secure, Timeouts: a.t}
	t := transfer{Start: time.Now()}
	res, err := s.Send(ctx, a.m, b.addr(), src)
	t.Elapsed = time.Since(t.Start)
	if len(res) == 1 {
		t.Sent = res[0]
	}
	if werr := wait(ctx); werr != nil {
		err = errors.Join(err, werr)
	}
	if err != nil {
		return t, fmt.Errorf("send %s: %w", src.Name, err)
	}
	if !t.Sent.Verified || t.Sent.Transport != ns {
		return t, fmt.Errorf("send %s: sender's result: verified %v, transport %s", src.Name, t.Sent.Verified, t.Sent.Transport)
	}
	return t, nil
}
