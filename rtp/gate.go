package rtp

import (
	"sync/atomic"

	pionrtp "github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// gatedTrack wraps a source's track: while the gate is shut (hold, mute,
// senders that exclude this side, a removed content) the packets the
// source writes are dropped. The sender keeps its track, so pion's
// negotiation checks never see a sending transceiver without one.
type gatedTrack struct {
	webrtc.TrackLocal
	shut atomic.Bool
}

func newGate(t webrtc.TrackLocal) *gatedTrack { return &gatedTrack{TrackLocal: t} }

// Bind implements webrtc.TrackLocal: the source writes through the gate.
func (g *gatedTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return g.TrackLocal.Bind(gatedContext{ctx, g})
}

// Unbind implements webrtc.TrackLocal.
func (g *gatedTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	return g.TrackLocal.Unbind(gatedContext{ctx, g})
}

func (g *gatedTrack) set(open bool) { g.shut.Store(!open) }

type gatedContext struct {
	webrtc.TrackLocalContext
	g *gatedTrack
}

func (c gatedContext) WriteStream() webrtc.TrackLocalWriter {
	return gatedWriter{c.TrackLocalContext.WriteStream(), c.g}
}

type gatedWriter struct {
	w webrtc.TrackLocalWriter
	g *gatedTrack
}

func (w gatedWriter) WriteRTP(h *pionrtp.Header, payload []byte) (int, error) {
	if w.g.shut.Load() {
		return len(payload), nil
	}
	return w.w.WriteRTP(h, payload)
}

func (w gatedWriter) Write(b []byte) (int, error) {
	if w.g.shut.Load() {
		return len(b), nil
	}
	return w.w.Write(b)
}
