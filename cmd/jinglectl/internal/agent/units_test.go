package agent

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

func TestOutcome(t *testing.T) {
	te := func(kind error) error {
		return fmt.Errorf("send: %w", &filetransfer.TransferError{Kind: kind, Err: errors.New("detail")})
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{te(filetransfer.ErrDeclined), OutcomeDeclined},
		{te(filetransfer.ErrHashMismatch), OutcomeHashMismatch},
		{te(filetransfer.ErrUnverified), OutcomeHashMismatch},
		{te(filetransfer.ErrTransport), OutcomeTransport},
		{te(filetransfer.ErrTimeout), OutcomeTimeout},
		{te(filetransfer.ErrCanceled), OutcomeCanceled},
		{&filetransfer.TransferError{Kind: filetransfer.ErrCanceled, Err: context.DeadlineExceeded}, OutcomeTimeout},
		{te(filetransfer.ErrTooLarge), OutcomeTooLarge},
		{te(filetransfer.ErrIO), OutcomeIO},
		{te(filetransfer.ErrProtocol), OutcomeProtocol},
		{fmt.Errorf("x: %w", jingle.ErrTransportFailed), OutcomeTransport},
		{fmt.Errorf("%w: x", ErrRecipientOffline), OutcomeOffline},
		{fmt.Errorf("%w: x", ErrUnsupported), OutcomeUnsupported},
		{fmt.Errorf("%w: x", ErrNoCommonTransport), OutcomeTransport},
		{fmt.Errorf("login: %w", &xmppclient.SASLError{Condition: "not-authorized"}), OutcomeAuth},
		{fmt.Errorf("login: %w", &xmppclient.SASLError{Condition: "temporary-auth-failure"}), OutcomeFailed},
		{fmt.Errorf("%w: refused", xmppclient.ErrConnect), OutcomeConnect},
		{fmt.Errorf("%w: x509", xmppclient.ErrTLS), OutcomeConnect},
		{xmppclient.ErrDisconnected, OutcomeConnect},
		{context.Canceled, OutcomeCanceled},
		{errors.New("anything"), OutcomeFailed},
	} {
		if got := Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for _, o := range []string{OutcomeDeclined, OutcomeHashMismatch, OutcomeTooLarge, OutcomeUnsupported, OutcomeAuth, OutcomeIO, OutcomeOK} {
		if Retryable(o) {
			t.Errorf("%s must not be retried", o)
		}
	}
	for _, o := range []string{OutcomeOffline, OutcomeTransport, OutcomeTimeout, OutcomeConnect} {
		if !Retryable(o) {
			t.Errorf("%s must be retried", o)
		}
	}
}

// TestChooseTransports is the transport choice table: what each mode
// offers, in order, to peers advertising different transports.
func TestChooseTransports(t *testing.T) {
	const dc, iceUDP = ice.NSWebRTCDataChannel, ice.NSICEUDP
	info := func(fs ...string) xmppclient.Info {
		return xmppclient.Info{Features: append([]string{jingle.NS}, fs...)}
	}
	all := info(ibb.NSTransport, socks5.NS, dc, iceUDP, ice.NSDTLS, ice.NSDTLSSCTP)
	both := info(ibb.NSTransport, socks5.NS)
	onlyIBB := info(ibb.NSTransport)
	none := info()
	conversations := info(ibb.NSTransport, socks5.NS, dc, iceUDP, ice.NSDTLS) // ICE-UDP for calls, no DTLS-SCTP
	stanzajs := info(ibb.NSTransport, iceUDP, ice.NSDTLS, ice.NSDTLSSCTP)
	rtpOnly := info(ibb.NSTransport, iceUDP, ice.NSDTLS) // ICE-UDP without data channels
	for _, tc := range []struct {
		name string
		mode string
		info xmppclient.Info
		want []string
		err  error
	}{
		{"auto all", "auto", all, []string{socks5.NS, dc, ibb.NSTransport}, nil},
		{"default all", "", all, []string{socks5.NS, dc, ibb.NSTransport}, nil},
		{"auto no ICE", "auto", both, []string{socks5.NS, ibb.NSTransport}, nil},
		{"auto conversations", "auto", conversations, []string{socks5.NS, dc, ibb.NSTransport}, nil},
		{"auto stanzajs", "auto", stanzajs, []string{iceUDP, ibb.NSTransport}, nil},
		{"auto rtp only", "auto", rtpOnly, []string{ibb.NSTransport}, nil},
		{"auto ibb", "auto", onlyIBB, []string{ibb.NSTransport}, nil},
		{"auto none", "auto", none, nil, ErrNoCommonTransport},
		{"s5b", "s5b", all, []string{socks5.NS}, nil},
		{"ibb", "ibb", all, []string{ibb.NSTransport}, nil},
		{"s5b missing", "s5b", onlyIBB, nil, ErrNoCommonTransport},
		{"ice all", "ice", all, []string{dc}, nil},
		{"ice stanzajs", "ice", stanzajs, []string{iceUDP}, nil},
		{"ice missing", "ice", both, nil, ErrNoCommonTransport},
		{"ice rtp only", "ice", rtpOnly, nil, ErrNoCommonTransport},
		{"unknown", "tcp", all, nil, ErrTransportNotAvailable},
	} {
		got, err := ChooseTransports(tc.mode, tc.info)
		if !errors.Is(err, tc.err) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: ChooseTransports(%q) = %v, %v; want %v, %v", tc.name, tc.mode, got, err, tc.want, tc.err)
		}
	}
	// The auto order is the documented preference, and every name maps
	// back from its namespaces.
	if got := fmt.Sprint(TransportPreference()); got != "[s5b ice ibb]" {
		t.Errorf("TransportPreference() = %v", got)
	}
	for ns, want := range map[string]string{socks5.NS: "s5b", ibb.NSTransport: "ibb", dc: "ice", iceUDP: "ice"} {
		if got := TransportName(ns); got != want {
			t.Errorf("TransportName(%s) = %q, want %q", ns, got, want)
		}
	}
}

// TestParseICEServer reads transfer.ice_servers entries, good and bad.
func TestParseICEServer(t *testing.T) {
	for _, tc := range []struct {
		in             string
		url, user, pwd string
		err            bool
	}{
		{in: "stun:stun.example.org:3478", url: "stun:stun.example.org:3478"},
		{in: "stun:127.0.0.1", url: "stun:127.0.0.1"},
		{in: "turn:alice:s3cret@turn.example.org:3478?transport=udp", url: "turn:turn.example.org:3478?transport=udp", user: "alice", pwd: "s3cret"},
		{in: "turns:u:p@turn.example.org:5349?transport=tcp", url: "turns:turn.example.org:5349?transport=tcp", user: "u", pwd: "p"},
		{in: "turn:a%40b:p%3Aq@[::1]:3478", url: "turn:[::1]:3478", user: "a@b", pwd: "p:q"},
		{in: "turn:turn.example.org:3478", err: true},        // no credentials
		{in: "turn:alice@turn.example.org:3478", err: true},  // no password
		{in: "stun:u:p@stun.example.org:3478", err: true},    // STUN with credentials
		{in: "http://example.org", err: true},                // not STUN/TURN
		{in: "stun.example.org:3478", err: true},             // no scheme
		{in: "turn:u:p@turn.example.org:99999", err: true},   // bad port
		{in: "turn:u:p@host:3478?transport=sctp", err: true}, // bad transport
		{in: "turn:u:%zz@host:3478", err: true},              // bad escape
		{in: "", err: true},
	} {
		srv, err := ParseICEServer(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("ParseICEServer(%q) = %+v, want an error", tc.in, srv)
			}
			continue
		}
		if err != nil || srv.URL != tc.url || srv.Username != tc.user || srv.Password != tc.pwd {
			t.Errorf("ParseICEServer(%q) = %+v, %v; want %s %s %s", tc.in, srv, err, tc.url, tc.user, tc.pwd)
		}
	}
}

// TestICEConfig: configured servers replace discovery; relay-only and
// loopback follow the configuration.
func TestICEConfig(t *testing.T) {
	c := Config{}.ICEConfig(nil)
	if c.Discovery == nil || len(c.Servers) != 0 || c.RelayOnly || c.IncludeLoopback {
		t.Errorf("default: %+v", c)
	}
	c = Config{ICEServers: []string{"turn:u:p@127.0.0.1:3478?transport=udp"}, ICERelayOnly: true, AllowLoopback: true}.ICEConfig(nil)
	if c.Discovery != nil || len(c.Servers) != 1 || c.Servers[0].Username != "u" || !c.RelayOnly || !c.IncludeLoopback {
		t.Errorf("configured: %+v", c)
	}
	if l := localICEConfig(true, nil); l.Discovery != nil || len(l.Servers) != 0 || !l.IncludeLoopback {
		t.Errorf("serverless: %+v", l)
	}
}

// tre is an xmlstream.TokenReadEncoder reading a fixed stanza.
type tre struct{ xml.TokenReader }

func (tre) Encode(any) error                          { return nil }
func (tre) EncodeElement(any, xml.StartElement) error { return nil }
func (tre) EncodeToken(xml.Token) error               { return nil }
func presenceReader(s string) xmlstream.TokenReadEncoder {
	return tre{xml.NewDecoder(strings.NewReader(s))}
}

// TestPresenceTracker feeds hostile and ordinary presence to the tracker.
func TestPresenceTracker(t *testing.T) {
	p := newPresenceTracker(xmppclient.NewDisco(xmppclient.DiscoConfig{}))
	p.self = jid.MustParse("me@example.org/here")
	avail := func(from, body string) {
		pr := stanza.Presence{From: jid.MustParse(from)}
		if err := p.handleAvailable(pr, presenceReader("<presence xmlns='jabber:client' from='"+from+"'>"+body+"</presence>")); err != nil {
			t.Fatalf("handler returned %v (would end the stream)", err)
		}
	}
	avail("bob@example.org/low", "<priority>-5</priority>")
	time.Sleep(time.Millisecond)
	avail("bob@example.org/high", "<priority>10</priority>")
	time.Sleep(time.Millisecond)
	avail("bob@example.org/zero", "")
	time.Sleep(time.Millisecond)
	avail("bob@example.org/junk", "<priority>lots</priority>")                 // treated as 0, newer than zero
	avail("bob@example.org/huge", "<priority>99999999999999999999</priority>") // out of range: 0
	avail("bob@example.org", "<priority>127</priority>")                       // bare: ignored
	avail("me@example.org/here", "")                                           // ourselves: ignored
	avail("carol@example.org/x", "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>")
	if err := p.handleAvailable(stanza.Presence{From: jid.MustParse("bob@example.org/bad")}, presenceReader("<presence><unclosed>")); err != nil {
		t.Fatal(err)
	}
	rs, _ := p.resources(jid.MustParse("bob@example.org"))
	var got []string
	for _, r := range rs {
		got = append(got, r.jid.Resourcepart())
	}
	if want := "high huge junk zero low"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
	_ = p.handleUnavailable(stanza.Presence{From: jid.MustParse("bob@example.org/high")}, nil)
	rs, _ = p.resources(jid.MustParse("bob@example.org"))
	if len(rs) != 4 || rs[0].jid.Resourcepart() == "high" {
		t.Errorf("after unavailable: %v", rs)
	}
	_ = p.handleUnavailable(stanza.Presence{From: jid.MustParse("bob@example.org")}, nil)
	if rs, _ := p.resources(jid.MustParse("bob@example.org")); len(rs) != 0 {
		t.Errorf("after bare unavailable: %v", rs)
	}
	// Bounded.
	for i := range maxPresences + 10 {
		avail(fmt.Sprintf("spam%d@example.org/r", i), "")
	}
	p.mu.Lock()
	n := len(p.online)
	p.mu.Unlock()
	if n > maxPresences {
		t.Errorf("%d resources kept, limit %d", n, maxPresences)
	}
}

func TestRosterPush(t *testing.T) {
	r := newRoster()
	r.self = jid.MustParse("me@example.org/x")
	push := func(from, body string) {
		start := xml.StartElement{Name: xml.Name{Space: NSRoster, Local: "query"}}
		d := xml.NewDecoder(strings.NewReader("<query xmlns='jabber:iq:roster'>" + body + "</query>"))
		d.Token() // the start element, given separately
		var buf strings.Builder
		enc := xml.NewEncoder(&buf)
		iq := stanza.IQ{ID: "1", Type: stanza.SetIQ}
		if from != "" {
			iq.From = jid.MustParse(from)
		}
		rw := struct {
			xml.TokenReader
			xmlstream.Encoder
		}{d, enc}
		if err := r.handlePush(iq, rw, &start); err != nil {
			t.Fatalf("push returned %v", err)
		}
	}
	push("", "<item jid='alice@example.org' subscription='both'/>")
	push("me@example.org", "<item jid='carol@example.org' subscription='to'/>")
	push("mallory@example.org", "<item jid='mallory@example.org' subscription='both'/>") // not the server
	push("", "<item jid='x@example.org' subscription='both'/><item jid='y@example.org' subscription='both'/>")
	if !r.mutual(jid.MustParse("alice@example.org/phone")) || r.mutual(jid.MustParse("carol@example.org")) ||
		r.mutual(jid.MustParse("mallory@example.org")) || r.mutual(jid.MustParse("x@example.org")) {
		t.Errorf("roster: %v", r.items)
	}
	push("", "<item jid='alice@example.org' subscription='remove'/>")
	if r.mutual(jid.MustParse("alice@example.org")) {
		t.Error("removed contact still mutual")
	}
}

func TestMetricsFormat(t *testing.T) {
	m := newMetrics()
	m.observe(Event{Event: EventDone, Direction: Send, Outcome: OutcomeOK, Transport: "s5b", Bytes: 1000, Offset: 400})
	m.observe(Event{Event: EventError, Direction: Receive, Outcome: OutcomeDeclined, Transport: "we\"ird\\\n"})
	m.observe(Event{Event: EventProgress, Direction: Send, Bytes: 5})
	m.retry()
	var b strings.Builder
	m.write(&b, gauges{connected: true, sessions: 2, queued: 3, active: 1})
	out := b.String()
	for _, want := range []string{
		`jinglectl_transfers_total{direction="send",outcome="ok",transport="s5b"} 1`,
		`jinglectl_transfers_total{direction="receive",outcome="declined",transport="we\"ird\\\n"} 1`,
		`jinglectl_bytes_total{direction="send"} 600`,
		`jinglectl_bytes_total{direction="receive"} 0`,
		`jinglectl_retries_total 1`,
		`jinglectl_connected 1`,
		`jinglectl_active_sessions 2`,
		`jinglectl_queued_transfers 3`,
		`jinglectl_active_transfers 1`,
		`# TYPE jinglectl_transfers_total counter`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

func TestThrottled(t *testing.T) {
	const rate = 200 << 10
	r := newThrottled(t.Context(), nopCloser{strings.NewReader(strings.Repeat("x", 100<<10))}, rate)
	start := time.Now()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	if el := time.Since(start); n != 100<<10 || el < 400*time.Millisecond {
		t.Errorf("read %d bytes in %s; want 100 KiB in about 500ms", n, el)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r = newThrottled(ctx, nopCloser{strings.NewReader(strings.Repeat("x", 100<<10))}, 1024)
	cancel()
	if _, err := r.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// TestMetricsRuntime: the process and Go runtime collectors are served
// next to the agent's own metrics.
func TestMetricsRuntime(t *testing.T) {
	m := newMetrics()
	var b strings.Builder
	if err := m.write(&b, gauges{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\njinglectl_reconnects_total 0\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestRotateAfter: after a drop the agent tries the next server first and
// the one that dropped it last.
func TestRotateAfter(t *testing.T) {
	list := []string{"a:1", "b:2", "c:3"}
	for _, tc := range []struct {
		last string
		want []string
	}{
		{"", list},
		{"x:9", list},
		{"a:1", []string{"b:2", "c:3", "a:1"}},
		{"c:3", list},
	} {
		if got := rotateAfter(list, tc.last); !slices.Equal(got, tc.want) {
			t.Errorf("rotateAfter(%q) = %q, want %q", tc.last, got, tc.want)
		}
	}
	if !slices.Equal(list, []string{"a:1", "b:2", "c:3"}) {
		t.Errorf("rotateAfter changed its input: %q", list)
	}
}

// TestSupersede: a new offer of the same file from the same full JID ends
// the old incoming transfer once it has stalled, and leaves alone one that
// still moves data.
func TestSupersede(t *testing.T) {
	from := jid.MustParse("alice@example.org/agent")
	newHubWith := func() (*hub, *atomic.Int32, func(int64)) {
		h := newHub()
		w := &watch{dir: Receive, peer: from, sid: "old", emit: func(Event) {}, byContent: map[string]*fileRef{}}
		f := &fileRef{id: "r1", name: "big.bin", size: 100, content: "c", finished: make(chan struct{})}
		w.byContent["c"] = f
		h.sessions["old"] = w
		var cancels atomic.Int32
		progress := func(n int64) {
			h.progress(filetransfer.Progress{SID: "old", Content: "c", Bytes: n, Transferred: n, Total: 100,
				Cancel: func() {
					cancels.Add(1)
					h.mu.Lock()
					defer h.mu.Unlock()
					select {
					case <-f.finished:
					default:
						close(f.finished)
					}
				}})
		}
		return h, &cancels, progress
	}
	offer := filetransfer.Offer{SID: "new", From: from, Name: "big.bin", Size: 100}

	t.Run("stalled", func(t *testing.T) {
		h, cancels, progress := newHubWith()
		progress(10)
		start := time.Now()
		h.supersede(offer, 5*time.Second)
		if cancels.Load() != 1 {
			t.Fatalf("%d cancels, want the stalled transfer ended", cancels.Load())
		}
		if d := time.Since(start); d < supersedeStall/2 || d > 3*time.Second {
			t.Errorf("superseded after %v", d)
		}
	})
	t.Run("moving", func(t *testing.T) {
		h, cancels, progress := newHubWith()
		progress(1)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for n := int64(2); ; n++ {
				progress(n)
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		h.supersede(offer, 2*time.Second)
		close(stop)
		<-done
		if cancels.Load() != 0 {
			t.Fatal("a transfer that still moves data was ended")
		}
		if d := time.Since(start); d < 2*time.Second {
			t.Errorf("supersede gave up after %v, want the whole wait", d)
		}
	})
	t.Run("other sender", func(t *testing.T) {
		h, cancels, progress := newHubWith()
		progress(10)
		o := offer
		o.From = jid.MustParse("alice@example.org/phone")
		h.supersede(o, 2*supersedeStall)
		if cancels.Load() != 0 {
			t.Fatal("an offer from another resource ended the transfer")
		}
	})
}
