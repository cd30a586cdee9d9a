package ice_test

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// barePionPair connects two pion PeerConnections with default settings
// (loopback candidates allowed, nothing else changed) and returns an open
// data channel on each side.
func barePionPair(tb testing.TB) (send, recv *webrtc.DataChannel, closeAll func()) {
	tb.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	a, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	closeAll = func() { _ = a.Close(); _ = b.Close() }
	opened := make(chan *webrtc.DataChannel, 1)
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { opened <- dc })
	})
	dc, err := a.CreateDataChannel("bench", nil)
	if err != nil {
		tb.Fatal(err)
	}
	aOpen := make(chan struct{})
	dc.OnOpen(func() { close(aOpen) })
	offer, err := a.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	ga := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-ga
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gb := webrtc.GatheringCompletePromise(b)
	if err := b.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-gb
	if err := a.SetRemoteDescription(*b.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-aOpen:
	case <-time.After(10 * time.Second):
		tb.Fatal("data channel did not open")
	}
	select {
	case recv = <-opened:
	case <-time.After(10 * time.Second):
		tb.Fatal("no incoming data channel")
	}
	return dc, recv, closeAll
}

// BenchmarkBarePionDataChannel is the untuned baseline: pion/webrtc's data
// channel with default settings, written in 16 KiB messages with the flow
// control of pion's own example (pause above 1 MiB buffered, resume below
// 512 KiB), read through OnMessage.
func BenchmarkBarePionDataChannel(b *testing.B) {
	const (
		msgSize     = 16 << 10
		maxBuffered = 1 << 20
		lowMark     = 512 << 10
		total       = 64 << 20
	)
	send, recv, closeAll := barePionPair(b)
	defer closeAll()
	var mu sync.Mutex
	got := 0
	done := make(chan struct{}, 1)
	target := 0
	recv.OnMessage(func(m webrtc.DataChannelMessage) {
		mu.Lock()
		got += len(m.Data)
		reached := got >= target
		mu.Unlock()
		if reached {
			select {
			case done <- struct{}{}:
			default:
			}
		}
	})
	low := make(chan struct{}, 1)
	send.SetBufferedAmountLowThreshold(lowMark)
	send.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	buf := make([]byte, msgSize)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, _ := processCPU()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		target += total
		mu.Unlock()
		for sent := 0; sent < total; sent += msgSize {
			for send.BufferedAmount() > maxBuffered {
				<-low
			}
			if err := send.Send(buf); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	}
	b.StopTimer()
	reportCPU(b, cpu0, int64(b.N)*total)
}

// BenchmarkICETransfer is the same 64 MiB through this package: two
// jinglekit clients on the in-memory network, a session with one content
// over the webrtc-datachannel dialect, host candidates on loopback, the
// default (tuned) Config: 4 MiB socket buffers, a 768 KiB SCTP receive
// window, 64 KiB messages, detached channel reads and writes.
func BenchmarkICETransfer(b *testing.B) {
	const total = 64 << 20
	n := xmpptest.NewNetwork(b)
	alice := newSide(b, n, xmpptest.Alice, loopbackConfig(b))
	bob := newSide(b, n, xmpptest.Bob, loopbackConfig(b))
	_, _, ca, cb := session(b, alice, bob, xmpptest.Bob, ice.NSWebRTCDataChannel)
	buf := make([]byte, 256<<10)
	errc := make(chan error, 1)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, _ := processCPU()
	for i := 0; i < b.N; i++ {
		go func() {
			for sent := 0; sent < total; sent += len(buf) {
				if _, err := ca.Write(buf); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		if _, err := io.CopyN(io.Discard, cb, total); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu0, int64(b.N)*total)
	_ = ca.Close()
	_ = cb.Close()
}

// reportCPU reports the process's CPU time since cpu0 (both ends of the
// transfer run in this process) as CPU-milliseconds per MiB moved: on a
// loaded machine that varies much less than throughput.
func reportCPU(b *testing.B, cpu0 time.Duration, bytes int64) {
	b.Helper()
	cpu1, ok := processCPU()
	if !ok || bytes == 0 {
		return
	}
	b.ReportMetric(float64((cpu1-cpu0).Milliseconds())/(float64(bytes)/(1<<20)), "cpu-ms/MiB")
}
