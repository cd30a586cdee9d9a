package agent

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/xmppclient"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
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

func TestChooseTransports(t *testing.T) {
	both := xmppclient.Info{Features: []string{ibb.NSTransport, jingle.NS, socks5.NS}}
	onlyIBB := xmppclient.Info{Features: []string{ibb.NSTransport}}
	none := xmppclient.Info{Features: []string{jingle.NS}}
	for _, tc := range []struct {
		mode string
		info xmppclient.Info
		want []string
		err  error
	}{
		{"auto", both, []string{socks5.NS, ibb.NSTransport}, nil},
		{"", both, []string{socks5.NS, ibb.NSTransport}, nil},
		{"auto", onlyIBB, []string{ibb.NSTransport}, nil},
		{"s5b", both, []string{socks5.NS}, nil},
		{"ibb", both, []string{ibb.NSTransport}, nil},
		{"s5b", onlyIBB, nil, ErrNoCommonTransport},
		{"auto", none, nil, ErrNoCommonTransport},
		{"ice", both, nil, ErrTransportNotAvailable},
		{"tcp", both, nil, ErrTransportNotAvailable},
	} {
		got, err := ChooseTransports(tc.mode, tc.info)
		if !errors.Is(err, tc.err) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ChooseTransports(%q) = %v, %v; want %v, %v", tc.mode, got, err, tc.want, tc.err)
		}
	}
	if _, err := ChooseTransports("ice", both); !strings.Contains(err.Error(), "ICE transport not available yet") {
		t.Errorf("ice error: %v", err)
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
