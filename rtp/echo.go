package rtp

import (
	"context"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v3"
)

// Echo sends a caller's media back: what arrives on the audio (video)
// content is written, packet by packet, to this side's audio (video)
// track. It is what `jinglectl answer --echo` and examples/callbot do.
//
//	echo := rtp.NewEcho()
//	err := call.Accept(ctx, echo.Options())
type Echo struct {
	mu     sync.Mutex
	tracks map[string]*webrtc.TrackLocalStaticRTP // by medium
	counts map[string]int
	rec    *Recorder
}

// Record makes the echo record what it sends back into r as well (a
// track has one reader: r.OnTrack cannot be used beside the echo's).
// Call it before Options.
func (e *Echo) Record(r *Recorder) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec = r
}

// NewEcho returns an Echo with an Opus audio and a VP8 video track.
func NewEcho() *Echo {
	return &Echo{tracks: map[string]*webrtc.TrackLocalStaticRTP{}, counts: map[string]int{}}
}

// echoSource is the local side of one medium: its track is fed by OnTrack.
type echoSource struct{ track *webrtc.TrackLocalStaticRTP }

func (s echoSource) Track() webrtc.TrackLocal { return s.track }

// Run waits for the call to end: the packets are written by OnTrack.
func (s echoSource) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (e *Echo) source(media string) (MediaSource, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.tracks[media]; t != nil {
		return echoSource{t}, nil
	}
	capability := OpusCapability
	if media == MediaVideo {
		capability = VP8Capability
	}
	t, err := webrtc.NewTrackLocalStaticRTP(capability, "echo-"+media, "jinglekit-echo")
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	e.tracks[media] = t
	return echoSource{t}, nil
}

// Options returns call options that echo audio and video, including a
// video content the caller adds mid-call.
func (e *Echo) Options() Options {
	audio, _ := e.source(MediaAudio)
	video, _ := e.source(MediaVideo)
	return Options{
		Audio: audio,
		Video: video,
		OnTrack: func(c *Call, content string, track *webrtc.TrackRemote) {
			media := MediaAudio
			if track.Kind() == webrtc.RTPCodecTypeVideo {
				media = MediaVideo
			}
			e.mu.Lock()
			local, rec := e.tracks[media], e.rec
			e.mu.Unlock()
			var q *packetQueue
			if rec != nil {
				q = rec.tee(c, content, track.Codec())
				defer q.end()
			}
			for {
				p, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				if q != nil {
					q.put(p)
				}
				if local == nil {
					continue
				}
				if err := local.WriteRTP(p); err != nil {
					return
				}
				e.mu.Lock()
				e.counts[media]++
				e.mu.Unlock()
			}
		},
		OnContentAdd: func(c *Call, content, media string) (MediaSource, bool) {
			src, err := e.source(media)
			if err != nil {
				return nil, true
			}
			return src, true
		},
	}
}

// Echoed returns how many packets of a medium were sent back.
func (e *Echo) Echoed(media string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[media]
}
