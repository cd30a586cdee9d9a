package rtp

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	pionice "github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v3"

	"github.com/jinglekit/jinglekit/transports/ice"
)

// Defaults of Config.
const (
	DefaultGatherWait     = time.Second
	DefaultConnectTimeout = 30 * time.Second
)

// Payload type numbers of the codecs this package offers.
const (
	PayloadOpus = 111
	PayloadPCMU = 0
	PayloadVP8  = 96
)

// Config holds the settings of calls. The zero value works: Opus and PCMU
// audio, VP8 video, host and server-reflexive candidates through Servers.
type Config struct {
	// Servers are the STUN and TURN servers (pion's ICEServer: URLs,
	// Username, Credential).
	Servers []webrtc.ICEServer
	// IncludeLoopback gathers host candidates on loopback interfaces, for
	// tests and peers on the same host.
	IncludeLoopback bool
	// DisableIPv6 gathers IPv4 candidates only.
	DisableIPv6 bool
	// InterfaceFilter and IPFilter, when set, choose the interfaces and
	// addresses host candidates are gathered on.
	InterfaceFilter func(name string) bool
	IPFilter        func(net.IP) bool
	// GatherWait bounds how long an offer or answer waits for candidate
	// gathering before it is sent (default 1s); later candidates are
	// trickled with transport-info.
	GatherWait time.Duration
	// ConnectTimeout bounds ICE and DTLS set-up after the call is accepted
	// (default 30s); then the call ends with failed-transport.
	ConnectTimeout time.Duration
	// DTLSRetransmit is the interval at which a lost DTLS handshake flight
	// is sent again (default 100ms; pion's own default, 1s, makes a call
	// whose first flight crossed the peer's ICE set-up wait a second).
	DTLSRetransmit time.Duration
	// MaxRemoteCandidates bounds the candidates taken from the peer per
	// content (default 64).
	MaxRemoteCandidates int
	// Logger receives the logs (pion's are passed through at debug level);
	// nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) gatherWait() time.Duration {
	if c.GatherWait <= 0 {
		return DefaultGatherWait
	}
	return c.GatherWait
}

func (c *Config) connectTimeout() time.Duration {
	if c.ConnectTimeout <= 0 {
		return DefaultConnectTimeout
	}
	return c.ConnectTimeout
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Codecs this package registers. Opus and VP8 are what the file sources
// play and the recorders write; PCMU is there for old peers.
var (
	codecOpus = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: PayloadOpus,
	}
	codecPCMU = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
		PayloadType:        PayloadPCMU,
	}
	codecVP8 = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}},
		PayloadType: PayloadVP8,
	}
)

// OpusCapability and VP8Capability describe the codecs of local tracks.
var (
	OpusCapability = codecOpus.RTPCodecCapability
	VP8Capability  = codecVP8.RTPCodecCapability
)

// newAPI builds the pion API of one call.
func (c *Config) newAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	for _, x := range []struct {
		p webrtc.RTPCodecParameters
		k webrtc.RTPCodecType
	}{{codecOpus, webrtc.RTPCodecTypeAudio}, {codecPCMU, webrtc.RTPCodecTypeAudio}, {codecVP8, webrtc.RTPCodecTypeVideo}} {
		if err := me.RegisterCodec(x.p, x.k); err != nil {
			return nil, fmt.Errorf("rtp: registering codec: %w", err)
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, fmt.Errorf("rtp: interceptors: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(pionice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(c.IncludeLoopback)
	se.SetSDPMediaLevelFingerprints(true)
	nets := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if !c.DisableIPv6 {
		nets = append(nets, webrtc.NetworkTypeUDP6)
	}
	se.SetNetworkTypes(nets)
	if c.InterfaceFilter != nil {
		se.SetInterfaceFilter(c.InterfaceFilter)
	}
	if c.IPFilter != nil {
		se.SetIPFilter(c.IPFilter)
	}
	rt := c.DTLSRetransmit
	if rt <= 0 {
		rt = 100 * time.Millisecond
	}
	se.SetDTLSRetransmissionInterval(rt)
	// The peer's checks often arrive before its answer: its address is
	// then learned as peer-reflexive, which pion would wait a second to
	// nominate. A working pair is a working pair.
	se.SetPrflxAcceptanceMinWait(0)
	se.LoggerFactory = ice.PionLoggers(c.logger(), slog.LevelDebug)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}
