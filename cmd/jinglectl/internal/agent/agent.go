package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/omemo"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// maxHistory bounds the finished transfers status remembers.
const maxHistory = 1000

// loginTimeout bounds one login attempt.
const loginTimeout = 30 * time.Second

// Agent is the headless transfer agent: it stays logged in (logging in
// again with exponential backoff when the connection is lost), receives
// files per policy, sends the files queued through its control socket
// (retrying those whose attempt failed for a reason that may go away),
// and serves /metrics.
type Agent struct {
	cfg Config
	log *slog.Logger
	met *metrics

	mu           sync.Mutex
	conn         *Conn
	connChanged  chan struct{}
	since        time.Time
	reconnects   int
	transfers    map[string]*transfer
	order        []string
	queue        []*transfer
	queueChanged chan struct{}
	nextSend     int
	nextRecv     int
	watchers     map[*watcher]struct{}
	controls     map[net.Conn]struct{}
	account      string
	// omemoBase sums the OMEMO Stats of the connections that ended (the
	// metrics add the current one's).
	omemoBase omemo.Stats

	// ready is closed once the control socket listens (for tests and
	// callers that start the agent in the background).
	ready chan struct{}
}

// transfer is one file of the agent.
type transfer struct {
	Transfer
	mode      string
	encrypt   string // EncryptAuto (""), EncryptAlways or EncryptNever
	peer      jid.JID
	ctx       context.Context
	cancel    context.CancelFunc
	notBefore time.Time
}

func (t *transfer) finished() bool {
	switch t.State {
	case StateDone, StateFailed, StateCanceled:
		return true
	}
	return false
}

// New returns an agent for cfg (WithDefaults is applied).
func New(cfg Config, log *slog.Logger) *Agent {
	if log == nil {
		log = slog.Default()
	}
	return &Agent{
		cfg:          cfg.WithDefaults(),
		log:          log,
		met:          newMetrics(),
		connChanged:  make(chan struct{}),
		transfers:    map[string]*transfer{},
		queueChanged: make(chan struct{}),
		watchers:     map[*watcher]struct{}{},
		controls:     map[net.Conn]struct{}{},
		account:      cfg.JID,
		ready:        make(chan struct{}),
	}
}

// Ready is closed once the control socket accepts connections.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run runs the agent until ctx is cancelled — then in-flight transfers
// are ended with session-terminate (received .part files stay for a
// resume, unfinished sends stay queued in the state file) — or until a
// fatal error: the control socket or metrics address cannot be used, or
// the very first login is refused (wrong password, TLS).
func (a *Agent) Run(ctx context.Context) error {
	if _, err := AccountJID(a.cfg.JID); err != nil {
		return err
	}
	if a.cfg.Password == "" {
		return errors.New("no password: set $" + EnvPassword + " or password_file")
	}
	if a.cfg.Dir != "" {
		if fi, err := os.Stat(a.cfg.Dir); err != nil || !fi.IsDir() {
			return &ConfigError{Err: fmt.Errorf("receive directory %s does not exist or is not a directory", a.cfg.Dir)}
		}
	}
	ln, err := ListenControl(a.cfg.Socket)
	if err != nil {
		return err
	}
	var srv *http.Server
	var mln net.Listener
	if a.cfg.Metrics != "" {
		mln, err = net.Listen("tcp", a.cfg.Metrics)
		if err != nil {
			ln.Close()
			return fmt.Errorf("%w on %s: %w", ErrMetricsListen, a.cfg.Metrics, err)
		}
		srv = &http.Server{Handler: a.met.handler(a.gauges), ReadHeaderTimeout: 10 * time.Second}
	}
	if err := a.loadState(); err != nil {
		a.log.Warn("jinglectl agent: cannot read the state file; starting with an empty queue", "file", a.cfg.StateFile, "error", err)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.acceptLoop(ctx, ln, &wg) }()
	if srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("jinglectl agent: metrics server", "error", err)
			}
		}()
		a.log.Info("jinglectl agent: metrics", "address", mln.Addr().String())
	}
	var workers sync.WaitGroup
	for range a.cfg.Concurrency {
		workers.Add(1)
		go func() { defer workers.Done(); a.worker(ctx) }()
	}
	a.log.Info("jinglectl agent: control socket", "path", a.cfg.Socket)
	close(a.ready)

	runErr := a.connLoop(ctx)
	stop()

	// Shutdown: the workers' sends end with session-terminate; then the
	// connection closes (terminating incoming sessions: reason gone).
	wdone := make(chan struct{})
	go func() { workers.Wait(); close(wdone) }()
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	select {
	case <-wdone:
	case <-sctx.Done():
		a.log.Warn("jinglectl agent: transfers did not stop in time")
	}
	a.mu.Lock()
	conn := a.conn
	a.conn = nil
	a.endConnLocked(conn)
	a.mu.Unlock()
	if conn != nil {
		if err := conn.Close(sctx); err != nil {
			a.log.Debug("jinglectl agent: closing the connection", "error", err)
		}
	}
	<-wdone
	a.mu.Lock()
	a.saveStateLocked()
	for w := range a.watchers {
		w.close()
	}
	a.mu.Unlock()
	ln.Close()
	if srv != nil {
		_ = srv.Close()
	}
	// Let the control connections write their last replies, briefly.
	hdone := make(chan struct{})
	go func() { wg.Wait(); close(hdone) }()
	select {
	case <-hdone:
	case <-time.After(2 * time.Second):
		a.mu.Lock()
		for c := range a.controls {
			c.Close()
		}
		a.mu.Unlock()
		<-hdone
	}
	a.log.Info("jinglectl agent: stopped")
	return runErr
}

func (a *Agent) connectOptions() Options {
	o := Options{
		Config:  a.cfg,
		OnEvent: a.emit,
		Logger:  a.log,
	}
	if a.cfg.Dir != "" {
		var allow []jid.JID
		for _, s := range a.cfg.AcceptFrom {
			if j, err := jid.Parse(s); err == nil {
				allow = append(allow, j)
			} else {
				a.log.Warn("jinglectl agent: ignoring an invalid accept_from JID", "jid", s, "error", err)
			}
		}
		o.Receive = &ReceiveOptions{Dir: a.cfg.Dir, AcceptFrom: allow, MaxSize: a.cfg.MaxSize, NewID: a.newReceiveID}
	}
	return o
}

// connLoop logs in, waits for the connection to end, and logs in again,
// until ctx ends. It returns an error only when the first login is
// refused for a reason retrying cannot fix.
func (a *Agent) connLoop(ctx context.Context) error {
	backoff := a.cfg.ReconnectMin
	first := true
	last := "" // the server of the connection that dropped
	for {
		lctx, cancel := context.WithTimeout(ctx, loginTimeout)
		opts := a.connectOptions()
		opts.Config.Servers = rotateAfter(opts.Config.Servers, last)
		conn, err := Connect(lctx, opts)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if first && (errors.Is(err, xmppclient.ErrAuth) || errors.Is(err, xmppclient.ErrTLS) || errors.Is(err, xmppclient.ErrNoMechanism)) {
				return err
			}
			d := jitter(backoff)
			a.log.Warn("jinglectl agent: login failed", "error", err, "retry_in", d.String())
			if !sleep(ctx, d) {
				return nil
			}
			backoff = min(backoff*2, a.cfg.ReconnectMax)
			continue
		}
		a.mu.Lock()
		if !first {
			a.reconnects++
			a.met.reconnect()
		}
		a.account = conn.LocalAddr().String()
		a.conn = conn
		a.since = time.Now()
		close(a.connChanged)
		a.connChanged = make(chan struct{})
		a.mu.Unlock()
		first = false
		backoff = a.cfg.ReconnectMin
		last = conn.Server()
		a.log.Info("jinglectl agent: logged in", "jid", conn.LocalAddr().String(), "server", last)
		select {
		case <-conn.Done():
		case <-ctx.Done():
			return nil
		}
		a.mu.Lock()
		a.conn = nil
		a.endConnLocked(conn)
		close(a.connChanged)
		a.connChanged = make(chan struct{})
		a.mu.Unlock()
		a.log.Warn("jinglectl agent: connection lost", "error", conn.Err(), "server", last)
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Close(cctx)
		cancel()
		if !sleep(ctx, jitter(backoff)) {
			return nil
		}
	}
}

// rotateAfter returns servers starting with the one after last: after a
// drop, the agent logs in through the next server first and tries the one
// that dropped it last. Without last in the list the order is unchanged.
func rotateAfter(servers []string, last string) []string {
	i := slices.Index(servers, last)
	if i < 0 {
		return servers
	}
	return append(slices.Clone(servers[i+1:]), servers[:i+1]...)
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitConn returns the current connection, waiting for one.
func (a *Agent) waitConn(ctx context.Context) *Conn {
	for {
		a.mu.Lock()
		c, ch := a.conn, a.connChanged
		a.mu.Unlock()
		if c != nil {
			return c
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

// Enqueue queues files for peer and returns their transfer ids. w, when
// set, is registered (under the same lock) to watch them.
func (a *Agent) enqueue(peer jid.JID, mode, encrypt string, paths []string, w *watcher) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	var events []Event
	for _, p := range paths {
		a.nextSend++
		t := a.newSendLocked("s"+strconv.Itoa(a.nextSend), peer, mode, encrypt, p)
		ids = append(ids, t.ID)
		events = append(events, Event{Event: EventQueued, Time: time.Now().UTC(), ID: t.ID, Direction: Send,
			Peer: peer.String(), File: t.File, Path: p, Size: t.Size})
	}
	if w != nil {
		w.ids = map[string]bool{}
		for _, id := range ids {
			w.ids[id] = true
		}
		w.remaining = len(ids)
		a.watchers[w] = struct{}{}
	}
	a.saveStateLocked()
	a.signalQueueLocked()
	for _, e := range events {
		a.broadcastLocked(e)
	}
	return ids
}

func (a *Agent) newSendLocked(id string, peer jid.JID, mode, encrypt, path string) *transfer {
	ctx, cancel := context.WithCancel(context.Background())
	t := &transfer{
		Transfer: Transfer{ID: id, Direction: Send, Peer: peer.String(), File: filepath.Base(path), Path: path,
			State: StateQueued, Updated: time.Now().UTC()},
		mode: mode, encrypt: encrypt, peer: peer, ctx: ctx, cancel: cancel,
	}
	if fi, err := os.Stat(path); err == nil {
		t.Size = fi.Size()
	}
	a.transfers[id] = t
	a.order = append(a.order, id)
	a.queue = append(a.queue, t)
	a.trimHistoryLocked()
	return t
}

func (a *Agent) signalQueueLocked() {
	close(a.queueChanged)
	a.queueChanged = make(chan struct{})
}

func (a *Agent) trimHistoryLocked() {
	if len(a.order) <= maxHistory {
		return
	}
	keep := a.order[:0]
	excess := len(a.order) - maxHistory
	for _, id := range a.order {
		if t := a.transfers[id]; excess > 0 && t != nil && t.finished() {
			delete(a.transfers, id)
			excess--
			continue
		}
		keep = append(keep, id)
	}
	a.order = keep
}

// nextJob takes the first queued transfer that is due, waiting for one.
func (a *Agent) nextJob(ctx context.Context) *transfer {
	for {
		if ctx.Err() != nil {
			return nil
		}
		a.mu.Lock()
		now := time.Now()
		var soonest time.Time
		for i, t := range a.queue {
			if !t.notBefore.After(now) {
				a.queue = append(a.queue[:i], a.queue[i+1:]...)
				t.State = StateActive
				t.Attempts++
				t.Updated = now.UTC()
				a.mu.Unlock()
				return t
			}
			if soonest.IsZero() || t.notBefore.Before(soonest) {
				soonest = t.notBefore
			}
		}
		ch := a.queueChanged
		a.mu.Unlock()
		var timer <-chan time.Time
		if !soonest.IsZero() {
			tm := time.NewTimer(time.Until(soonest))
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-ch:
		case <-timer:
		case <-ctx.Done():
			return nil
		}
	}
}

func (a *Agent) worker(ctx context.Context) {
	for {
		t := a.nextJob(ctx)
		if t == nil {
			return
		}
		a.runJob(ctx, t)
	}
}

// runJob makes one attempt at sending t.
func (a *Agent) runJob(ctx context.Context, t *transfer) {
	var held *Event
	var heldMu sync.Mutex
	attempt := t.Attempts
	emit := func(e Event) {
		e.Attempt = attempt
		if e.Terminal() {
			heldMu.Lock()
			held = &e
			heldMu.Unlock()
			return
		}
		a.emit(e)
	}
	err := ctx.Err()
	var conn *Conn
	if err == nil {
		conn = a.waitConn(ctx)
		if conn == nil {
			err = ErrShutdown
		}
	}
	jobCtx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	var results []filetransfer.Result
	if err == nil {
		var peer jid.JID
		var transports []string
		peer, info, rerr := conn.Resolve(jobCtx, t.peer, a.cfg.PresenceWait)
		err = rerr
		if err == nil {
			transports, err = ChooseTransports(t.mode, info)
		}
		var src filetransfer.Source
		if err == nil {
			src, err = filetransfer.FileSource(t.Path)
			if err != nil {
				err = fmt.Errorf("%w: %v", filetransfer.ErrIO, err)
			}
			if err == nil && attempt > 1 {
				// An earlier attempt may have arrived without this side
				// learning it: with the hash in the offer, the receiver
				// recognises the file it has and does not keep a copy.
				d, herr := fileDigest(t.Path)
				if herr != nil {
					err = fmt.Errorf("%w: %v", filetransfer.ErrIO, herr)
				}
				src.Hashes = []filetransfer.Digest{d}
			}
		}
		if err == nil {
			var serr error
			results, serr = conn.Send(jobCtx, peer, []Outgoing{{ID: t.ID, Path: t.Path, Source: src}},
				SendOptions{Transports: transports, LimitRate: a.cfg.LimitRate, Encrypt: t.encrypt}, emit)
			err = serr
			if len(results) > 0 {
				err = results[0].Err
				if err == nil && !results[0].Verified {
					err = fmt.Errorf("%w: not confirmed by the receiver", filetransfer.ErrUnverified)
				}
			}
		}
	}
	outcome := Outcome(err)
	final := Event{Event: EventError, Time: time.Now().UTC(), ID: t.ID, Direction: Send, Peer: t.Peer, File: t.File,
		Path: t.Path, Size: t.Size, Outcome: outcome, Attempt: t.Attempts}
	heldMu.Lock()
	if held != nil {
		final = *held
	}
	heldMu.Unlock()
	if err != nil {
		final.Event, final.Outcome, final.Error = EventError, outcome, err.Error()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil:
		final.Event, final.Outcome = EventDone, OutcomeOK
	case t.ctx.Err() != nil:
		final.Outcome, final.Error = OutcomeCanceled, "cancelled"
	case ctx.Err() != nil:
		// The agent is stopping: the file stays queued in the state file.
		t.State = StateQueued
		t.Attempts--
		final.Outcome, final.Error = OutcomeCanceled, "the agent stopped; the file stays queued"
		a.queue = append(a.queue, t)
	case Retryable(outcome) && t.Attempts < a.cfg.MaxAttempts:
		d := jitter(min(a.cfg.ReconnectMin<<min(t.Attempts-1, 16), a.cfg.ReconnectMax))
		t.notBefore = time.Now().Add(d)
		final.Event, final.RetryIn = EventRetry, d.Seconds()
		a.queue = append([]*transfer{t}, a.queue...)
		a.met.retry()
		a.signalQueueLocked()
	}
	a.emitLocked(final)
	a.saveStateLocked()
}

// newReceiveID names a received file.
func (a *Agent) newReceiveID(sid, content string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextRecv++
	return "r" + strconv.Itoa(a.nextRecv)
}

// emit records an event and passes it to the watchers.
func (a *Agent) emit(e Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.emitLocked(e)
}

func (a *Agent) emitLocked(e Event) {
	t := a.transfers[e.ID]
	if t == nil && e.Direction == Receive && e.ID != "" {
		t = &transfer{Transfer: Transfer{ID: e.ID, Direction: Receive, Peer: e.Peer, File: e.File, Size: e.Size, State: StateActive}}
		a.transfers[e.ID] = t
		a.order = append(a.order, e.ID)
		a.trimHistoryLocked()
	}
	if t != nil {
		t.Updated = e.Time
		if e.Size > 0 {
			t.Size = e.Size
		}
		if e.Bytes > 0 {
			t.Bytes = e.Bytes
		}
		if e.Rate > 0 {
			t.Rate = e.Rate
		}
		if e.Offset > 0 {
			t.Offset = e.Offset
		}
		if e.Transport != "" {
			t.Transport = e.Transport
		}
		if e.Route != "" {
			t.Route = e.Route
		}
		if e.Path != "" && e.Direction == Receive {
			t.Path = e.Path
		}
		switch e.Event {
		case EventDone:
			t.State, t.Outcome, t.Error = StateDone, OutcomeOK, ""
		case EventError:
			if t.State != StateQueued {
				t.State = StateFailed
				if e.Outcome == OutcomeCanceled {
					t.State = StateCanceled
				}
			}
			t.Outcome, t.Error = e.Outcome, e.Error
		case EventRetry:
			t.State, t.Outcome, t.Error = StateRetrying, e.Outcome, e.Error
		}
	}
	a.met.observe(e)
	lvl := slog.LevelInfo
	if e.Event == EventProgress {
		lvl = slog.LevelDebug
	} else if e.Event == EventError || e.Event == EventRetry {
		lvl = slog.LevelWarn
	}
	if a.log.Enabled(context.Background(), lvl) {
		a.log.Log(context.Background(), lvl, "jinglectl agent: "+e.Event, eventAttrs(e)...)
	}
	a.broadcastLocked(e)
}

func eventAttrs(e Event) []any {
	out := []any{"id", e.ID, "direction", e.Direction, "peer", e.Peer, "file", e.File}
	if e.Transport != "" {
		out = append(out, "transport", e.Transport)
	}
	if e.Route != "" {
		out = append(out, "route", e.Route)
	}
	if e.Bytes > 0 {
		out = append(out, "bytes", e.Bytes)
	}
	if e.Offset > 0 {
		out = append(out, "offset", e.Offset)
	}
	if e.Outcome != "" {
		out = append(out, "outcome", e.Outcome)
	}
	if e.Error != "" {
		out = append(out, "error", e.Error)
	}
	if e.Attempt > 0 {
		out = append(out, "attempt", e.Attempt)
	}
	return out
}

// status returns the agent's status.
func (a *Agent) status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{JID: a.account, Connected: a.conn != nil, Reconnects: a.reconnects, Queued: len(a.queue), Transfers: []Transfer{}}
	if a.conn != nil {
		s.Since = a.since.UTC()
		s.Sessions = a.conn.ActiveSessions()
		s.Server = a.conn.Server()
	}
	for _, id := range a.order {
		if t := a.transfers[id]; t != nil {
			s.Transfers = append(s.Transfers, t.Transfer)
		}
	}
	return s
}

// endConnLocked adds the OMEMO Stats of a connection that ends to
// omemoBase.
func (a *Agent) endConnLocked(c *Conn) {
	if c == nil {
		return
	}
	if om := c.OMEMO(); om != nil {
		a.omemoBase = a.omemoBase.Add(om.Stats())
	}
}

func (a *Agent) gauges() gauges {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := gauges{connected: a.conn != nil, queued: len(a.queue), omemo: a.omemoBase}
	if a.conn != nil {
		g.sessions = a.conn.ActiveSessions()
		g.server = a.conn.Server()
		if om := a.conn.OMEMO(); om != nil {
			g.omemo = g.omemo.Add(om.Stats())
		}
	}
	for _, t := range a.transfers {
		if t.State == StateActive {
			g.active++
		}
	}
	return g
}

// cancel cancels a transfer: a queued send leaves the queue, an active
// one is terminated, a received file is removed from its session.
func (a *Agent) cancel(id string) error {
	a.mu.Lock()
	t := a.transfers[id]
	if t == nil {
		a.mu.Unlock()
		return fmt.Errorf("no transfer %q", id)
	}
	if t.finished() {
		a.mu.Unlock()
		return fmt.Errorf("transfer %s is already %s", id, t.State)
	}
	if t.Direction == Send {
		t.cancel()
		for i, q := range a.queue {
			if q == t {
				a.queue = append(a.queue[:i], a.queue[i+1:]...)
				t.State = StateCanceled
				a.emitLocked(Event{Event: EventError, Time: time.Now().UTC(), ID: t.ID, Direction: Send, Peer: t.Peer,
					File: t.File, Path: t.Path, Size: t.Size, Outcome: OutcomeCanceled, Error: "cancelled"})
				a.saveStateLocked()
				break
			}
		}
		a.mu.Unlock()
		return nil
	}
	conn := a.conn
	a.mu.Unlock()
	if conn == nil || !conn.CancelFile(id) {
		return fmt.Errorf("transfer %s cannot be cancelled now", id)
	}
	return nil
}

// savedState is the state file: the sends not finished.
type savedState struct {
	Version  int          `json:"v"`
	NextSend int          `json:"next_send"`
	Queue    []savedQueue `json:"queue"`
}

type savedQueue struct {
	ID        string `json:"id"`
	Peer      string `json:"peer"`
	Path      string `json:"path"`
	Transport string `json:"transport,omitempty"`
	Encrypt   string `json:"encrypt,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
}

func (a *Agent) saveStateLocked() {
	if a.cfg.StateFile == "" {
		return
	}
	st := savedState{Version: 1, NextSend: a.nextSend, Queue: []savedQueue{}}
	for _, id := range a.order {
		t := a.transfers[id]
		if t == nil || t.Direction != Send || t.finished() {
			continue
		}
		st.Queue = append(st.Queue, savedQueue{ID: t.ID, Peer: t.Peer, Path: t.Path, Transport: t.mode, Encrypt: t.encrypt, Attempts: t.Attempts})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	tmp := a.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		a.log.Warn("jinglectl agent: cannot write the state file", "error", err)
		return
	}
	if err := os.Rename(tmp, a.cfg.StateFile); err != nil {
		a.log.Warn("jinglectl agent: cannot write the state file", "error", err)
	}
}

func (a *Agent) loadState() error {
	if a.cfg.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(a.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextSend = max(a.nextSend, st.NextSend)
	for _, q := range st.Queue {
		peer, err := jid.Parse(q.Peer)
		if err != nil || q.ID == "" || !filepath.IsAbs(q.Path) || a.transfers[q.ID] != nil {
			continue
		}
		t := a.newSendLocked(q.ID, peer, q.Transport, q.Encrypt, q.Path)
		t.Attempts = q.Attempts
	}
	if len(st.Queue) > 0 {
		a.log.Info("jinglectl agent: resuming the queue", "files", len(a.queue))
	}
	return nil
}
