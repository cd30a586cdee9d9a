package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v3"
)

// baselinePion is the name of the ICE case's baseline.
const baselinePion = "baseline/pion-datachannel"

// Settings of the bare pion baseline: pion's own data channel example's
// flow control (pause above 1 MiB buffered, resume below 512 KiB) and
// 16 KiB messages, the size browsers interoperate with.
const (
	pionMessage     = 16 << 10
	pionMaxBuffered = 1 << 20
	pionLowMark     = 512 << 10
)

// pionDataChannel moves size bytes over a bare pion/webrtc data channel
// between two PeerConnections of this process with default settings
// (loopback host candidates allowed, nothing tuned), read through
// OnMessage, and returns the time from the first Send to the last byte
// received. Set-up (ICE, DTLS, SCTP) is not timed.
func pionDataChannel(ctx context.Context, size int64) (time.Duration, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	a, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return 0, err
	}
	defer a.Close()
	b, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return 0, err
	}
	defer b.Close()

	var (
		mu   sync.Mutex
		got  int64
		done = make(chan struct{})
	)
	opened := make(chan struct{})
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			mu.Lock()
			before := got
			got += int64(len(m.Data))
			reached := before < size && got >= size
			mu.Unlock()
			if reached {
				close(done)
			}
		})
		dc.OnOpen(func() { close(opened) })
	})
	dc, err := a.CreateDataChannel("bench", nil)
	if err != nil {
		return 0, err
	}
	aOpen := make(chan struct{})
	dc.OnOpen(func() { close(aOpen) })
	if err := signalPion(a, b); err != nil {
		return 0, err
	}
	for _, ch := range []chan struct{}{aOpen, opened} {
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(30 * time.Second):
			return 0, errors.New("bench: pion data channel did not open")
		}
	}
	low := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(pionLowMark)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	buf := make([]byte, pionMessage)
	start := time.Now()
	for sent := int64(0); sent < size; {
		n := min(int64(len(buf)), size-sent)
		for dc.BufferedAmount() > pionMaxBuffered {
			select {
			case <-low:
			case <-time.After(100 * time.Millisecond): // re-check: the low event may have fired before we waited
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if err := dc.Send(buf[:n]); err != nil {
			return 0, fmt.Errorf("bench: pion send: %w", err)
		}
		sent += n
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return time.Since(start), nil
}

// signalPion exchanges offer and answer between a and b, with all
// candidates in them (no trickle).
func signalPion(a, b *webrtc.PeerConnection) error {
	offer, err := a.CreateOffer(nil)
	if err != nil {
		return err
	}
	ga := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		return err
	}
	<-ga
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		return err
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gb := webrtc.GatheringCompletePromise(b)
	if err := b.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gb
	return a.SetRemoteDescription(*b.LocalDescription())
}
