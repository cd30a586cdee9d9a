package xmppclient

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS is a tiny authoritative DNS server on loopback UDP for SRV tests.
type fakeDNS struct {
	pc net.PacketConn

	mu      sync.Mutex
	srv     map[string][]dnsmessage.SRVResource // by question name, eg. "_xmpp-client._tcp.localhost."
	a       map[string][4]byte                  // by name
	queries []string                            // "TYPE name"
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDNS{pc: pc, srv: map[string][]dnsmessage.SRVResource{}, a: map[string][4]byte{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.serve()
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return f
}

// resolver returns a pure Go resolver that asks only f.
func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", f.pc.LocalAddr().String())
		},
	}
}

// log returns the questions received so far.
func (f *fakeDNS) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

func (f *fakeDNS) asked(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.queries {
		if strings.HasPrefix(q, prefix) {
			return true
		}
	}
	return false
}

func (f *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		resp, err := f.answer(h, q)
		if err != nil {
			continue
		}
		_, _ = f.pc.WriteTo(resp, addr)
	}
}

func (f *fakeDNS) answer(h dnsmessage.Header, q dnsmessage.Question) ([]byte, error) {
	name := strings.ToLower(q.Name.String())
	f.mu.Lock()
	f.queries = append(f.queries, strings.TrimPrefix(q.Type.String(), "Type")+" "+name)
	srvs, hasSRV := f.srv[name]
	a, hasA := f.a[name]
	f.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !hasSRV && !hasA {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch {
	case q.Type == dnsmessage.TypeSRV && hasSRV:
		for _, s := range srvs {
			if err := b.SRVResource(rr, s); err != nil {
				return nil, err
			}
		}
	case q.Type == dnsmessage.TypeA && hasA:
		if err := b.AResource(rr, dnsmessage.AResource{A: a}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// setSRV publishes SRV records for service (eg. "_xmpp-client._tcp") of
// domain pointing at host:port, and an A record 127.0.0.1 for host.
func (f *fakeDNS) setSRV(t *testing.T, service, domain, host string, port uint16) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	target := dnsmessage.MustNewName(host + ".")
	f.srv[service+"."+domain+"."] = append(f.srv[service+"."+domain+"."],
		dnsmessage.SRVResource{Priority: 0, Weight: 1, Port: port, Target: target})
	f.a[host+"."] = [4]byte{127, 0, 0, 1}
}
