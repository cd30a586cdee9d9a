package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// watcherBuffer is the number of replies queued for a slow control client;
// progress events beyond it are dropped, and a client that falls further
// behind is disconnected.
const watcherBuffer = 1024

// watcher is a control connection that follows transfer events.
type watcher struct {
	ch        chan Reply
	ids       map[string]bool // nil: every transfer
	remaining int             // files not finished yet (with ids)
	closed    bool
}

func newWatcher() *watcher { return &watcher{ch: make(chan Reply, watcherBuffer)} }

func (w *watcher) close() {
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

// broadcastLocked passes e to the watchers interested in it.
func (a *Agent) broadcastLocked(e Event) {
	for w := range a.watchers {
		if w.closed || (w.ids != nil && !w.ids[e.ID]) {
			continue
		}
		select {
		case w.ch <- Reply{Event: e}:
		default:
			if e.Event == EventProgress {
				continue
			}
			// Too slow: let it go rather than block the transfers.
			w.close()
			delete(a.watchers, w)
			continue
		}
		if w.ids != nil && e.Terminal() {
			w.remaining--
			if w.remaining <= 0 {
				w.close()
				delete(a.watchers, w)
			}
		}
	}
}

func (a *Agent) acceptLoop(ctx context.Context, ln *net.UnixListener, wg *sync.WaitGroup) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil {
				a.log.Debug("jinglectl agent: control socket closed", "error", err)
			}
			return
		}
		if err := checkPeer(c, true); err != nil {
			a.log.Warn("jinglectl agent: refusing a control connection", "error", err)
			c.Close()
			continue
		}
		a.mu.Lock()
		if ctx.Err() != nil {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.controls[c] = struct{}{}
		a.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				a.mu.Lock()
				delete(a.controls, c)
				a.mu.Unlock()
				c.Close()
			}()
			a.serveControl(ctx, c)
		}()
	}
}

// serveControl answers one control connection: one request, then its
// replies.
func (a *Agent) serveControl(ctx context.Context, c net.Conn) {
	enc := json.NewEncoder(c)
	write := func(r Reply) bool {
		if r.Time.IsZero() {
			r.Time = time.Now().UTC()
		}
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		return enc.Encode(r) == nil
	}
	refuse := func(format string, args ...any) {
		write(Reply{Event: Event{Event: EventError, Error: fmt.Sprintf(format, args...)}})
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), MaxRequestBytes)
	if !sc.Scan() {
		if sc.Err() != nil {
			refuse("reading the request: %v", sc.Err())
		}
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	req, err := decodeRequest(sc.Bytes())
	if err != nil {
		refuse("%v", err)
		return
	}
	switch req.Op {
	case OpStatus:
		st := a.status()
		write(Reply{Event: Event{Event: ReplyStatus}, Status: &st})
	case OpCancel:
		for _, id := range req.IDs {
			if err := a.cancel(id); err != nil {
				write(Reply{Event: Event{Event: EventError, ID: id, Error: err.Error()}})
				continue
			}
			write(Reply{Event: Event{Event: ReplyCanceled, ID: id}})
		}
	case OpSend:
		a.serveSend(ctx, c, req, write, refuse)
	case OpWatch:
		w := newWatcher()
		a.mu.Lock()
		a.watchers[w] = struct{}{}
		a.mu.Unlock()
		a.stream(ctx, c, w, write)
	}
}

// decodeRequest reads and checks a request line: a JSON object with a
// known operation and, for send, a valid recipient, 1 to MaxRequestFiles
// absolute paths and a known transport mode; for cancel, at least one
// transfer id. Whether the files exist is checked when they are queued.
func decodeRequest(line []byte) (Request, error) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, fmt.Errorf("malformed request: %w", err)
	}
	// An empty list is no list: "files":[] reads as the request written
	// without it, as Request's JSON (omitempty) writes it back.
	if len(req.Files) == 0 {
		req.Files = nil
	}
	if len(req.IDs) == 0 {
		req.IDs = nil
	}
	switch req.Op {
	case OpStatus, OpWatch:
	case OpCancel:
		if len(req.IDs) == 0 {
			return Request{}, errors.New("cancel: no transfer id")
		}
	case OpSend:
		if _, err := jid.Parse(req.Peer); err != nil || req.Peer == "" {
			return Request{}, fmt.Errorf("send: invalid recipient %q", req.Peer)
		}
		if len(req.Files) == 0 || len(req.Files) > MaxRequestFiles {
			return Request{}, fmt.Errorf("send: give between 1 and %d files", MaxRequestFiles)
		}
		for _, p := range req.Files {
			if !filepath.IsAbs(p) {
				return Request{}, fmt.Errorf("send: %s: the agent needs absolute paths", p)
			}
		}
		switch req.Transport {
		case "", TransportAuto, TransportIBB, TransportS5B, TransportICE:
		default:
			return Request{}, fmt.Errorf("send: unknown transport %q", req.Transport)
		}
		switch req.Encrypt {
		case "", EncryptAuto, EncryptAlways, EncryptNever:
		default:
			return Request{}, fmt.Errorf("send: unknown encryption mode %q", req.Encrypt)
		}
	default:
		return Request{}, fmt.Errorf("unknown operation %q", req.Op)
	}
	return req, nil
}

func (a *Agent) serveSend(ctx context.Context, c net.Conn, req Request, write func(Reply) bool, refuse func(string, ...any)) {
	peer, err := jid.Parse(req.Peer) // checked by decodeRequest
	if err != nil {
		refuse("send: invalid recipient %q", req.Peer)
		return
	}
	for _, p := range req.Files {
		fi, err := os.Stat(p)
		if err != nil {
			refuse("send: %v", err)
			return
		}
		if !fi.Mode().IsRegular() {
			refuse("send: %s is not a regular file", p)
			return
		}
	}
	mode := req.Transport
	if mode == "" {
		mode = a.cfg.Transport
	}
	var w *watcher
	if req.Wait {
		w = newWatcher() // registered by enqueue, under the same lock
	}
	ids := a.enqueue(peer, mode, req.Encrypt, req.Files, w)
	if !write(Reply{Event: Event{Event: EventQueued}, IDs: ids}) || w == nil {
		return
	}
	a.stream(ctx, c, w, write)
}

// stream writes the watcher's replies until it is closed, the client goes
// away or the agent stops; then "end".
func (a *Agent) stream(ctx context.Context, c net.Conn, w *watcher, write func(Reply) bool) {
	gone := make(chan struct{})
	go func() {
		// The client writes nothing more: EOF or an error means it left.
		var b [1]byte
		_, _ = c.Read(b[:])
		close(gone)
	}()
	defer func() {
		a.mu.Lock()
		delete(a.watchers, w)
		w.close()
		a.mu.Unlock()
		c.Close()
		<-gone
	}()
	// forward writes what w.ch gave, "end" once it is closed; false when
	// the stream is over.
	forward := func(r Reply, ok bool) bool {
		if !ok {
			write(Reply{Event: Event{Event: ReplyEnd}})
			return false
		}
		return write(r)
	}
	for {
		select {
		case r, ok := <-w.ch:
			if !forward(r, ok) {
				return
			}
		case <-gone:
			return
		case <-ctx.Done():
			// Deliver what is queued (the final events of the shutdown).
			for {
				select {
				case r, ok := <-w.ch:
					if !forward(r, ok) {
						return
					}
				case <-time.After(a.cfg.ShutdownTimeout):
					return
				}
			}
		}
	}
}
