package socks5_test

import (
	"context"
	"io"
	"log"
	"net"
	"syscall"
	"testing"
	"time"

	gosocks5 "github.com/armon/go-socks5"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// The data path benchmarks copy b.N chunks of 64 KiB from one end of a
// stream to the other. Compare:
//
//	BenchmarkRawTCP       a loopback TCP connection: the floor.
//	BenchmarkS5BDirect    the bytestream of a negotiated S5B session (the
//	                      peer's connection handed over by the streamhost).
//	BenchmarkGoSocks5TCP  what stock go-socks5 would give: a CONNECT proxy
//	                      copying to a local TCP target in its own loop.
//	BenchmarkGoSocks5Pipe stock go-socks5 whose Dial returns a net.Pipe end
//	                      that the transport would read.
const benchChunk = 64 << 10

// benchCopy writes b.N chunks on w while r is drained, and waits until
// every byte arrived.
func benchCopy(b *testing.B, w, r net.Conn) {
	b.Helper()
	total := int64(b.N) * benchChunk
	got := make(chan error, 1)
	go func() {
		// Big reads, so that the reader is not what is measured
		// (io.Discard reads 8 KiB at a time).
		buf := make([]byte, 256<<10)
		var n int64
		for n < total {
			m, err := r.Read(buf[:min(int64(len(buf)), total-n)])
			n += int64(m)
			if err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	chunk := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	// CPU time of the whole process (user + system) per MiB moved: on a
	// busy two-core machine an extra copy shows here more reliably than
	// in the throughput.
	mib := float64(total) / (1 << 20)
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/mib, "cpu-µs/MiB")
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-ch
	if s == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func BenchmarkRawTCP(b *testing.B) {
	c, s := tcpPair(b)
	benchCopy(b, c, s)
}

func BenchmarkS5BDirect(b *testing.B) {
	_, alice, bob := newPair(b, loopback(), loopback(), false)
	as, bs := accepted(b, alice, bob, offer("f"))
	ca, cb := conns(b, as, bs, "f")
	benchCopy(b, ca, cb)
}

// BenchmarkS5BSetup measures a whole negotiation: session-initiate,
// session-accept, both checks and reports, over the in-memory XMPP
// network and loopback TCP.
func BenchmarkS5BSetup(b *testing.B) {
	_, alice, bob := newPair(b, loopback(), loopback(), false)
	b.ReportAllocs()
	for range b.N {
		as, bs := accepted(b, alice, bob, offer("f"))
		ca, cb := conns(b, as, bs, "f")
		ca.Close()
		cb.Close()
		as.Terminate(context.Background(), jingleSuccess)
		<-bs.Done()
	}
}

// stockGoSocks5 serves SOCKS5 with stock go-socks5 on loopback, dialing
// with dial; it returns the server's address.
func stockGoSocks5(b *testing.B, dial func(ctx context.Context, network, addr string) (net.Conn, error)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := gosocks5.New(&gosocks5.Config{
		Resolver: anyName{},
		Logger:   log.New(io.Discard, "", 0),
		Dial:     dial,
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.ServeConn(c)
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

type anyName struct{}

func (anyName) Resolve(ctx context.Context, _ string) (context.Context, net.IP, error) {
	return ctx, net.IPv4(127, 0, 0, 1), nil
}

func socksClient(b *testing.B, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := socks5.Handshake(ctx, c, socks5.DstAddr("sid", "a@x/a", "b@x/b")); err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkGoSocks5TCP(b *testing.B) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := target.Accept()
		accepted <- c
	}()
	addr := stockGoSocks5(b, func(ctx context.Context, network, _ string) (net.Conn, error) {
		return net.Dial(network, target.Addr().String())
	})
	c := socksClient(b, addr)
	s := <-accepted
	if s == nil {
		b.Fatal("no target connection")
	}
	defer s.Close()
	benchCopy(b, c, s)
	c.Close()
}

// pipeTarget is a net.Pipe end with the *net.TCPAddr go-socks5 asserts.
type pipeTarget struct{ net.Conn }

func (pipeTarget) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

func BenchmarkGoSocks5Pipe(b *testing.B) {
	inner, outer := net.Pipe()
	defer outer.Close()
	addr := stockGoSocks5(b, func(context.Context, string, string) (net.Conn, error) {
		return pipeTarget{inner}, nil
	})
	c := socksClient(b, addr)
	benchCopy(b, c, outer)
	c.Close()
}

var jingleSuccess = jingle.Reason{Condition: jingle.ReasonSuccess}
