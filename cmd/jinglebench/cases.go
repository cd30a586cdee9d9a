package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Baseline case names.
const (
	baseTCP       = "baseline/tcp-copy"
	baseTCPSHA256 = "baseline/tcp-sha256"
	baseTCPFile   = "baseline/tcp-sha256-file"
	// baseTCPFilePiped is baseTCPFile with filetransfer's parallel
	// hashing: compared with it, a file transfer's ratio is its
	// protocol's overhead alone.
	baseTCPFilePiped = "baseline/tcp-sha256-file-pipelined"
	baseB64Small     = "baseline/base64-4096"
	baseB64Large     = "baseline/base64-65535"
	baseIQRTT        = "baseline/iq-rtt"
)

// transportCase is one transport configuration: the throughput group
// measures each, the latency group those with latency set. To add a
// transport: append a transportCase whose cfg.extra registers
// its method, and a baselineCase (in baselineCases) for its raw
// counterpart (a bare pion data channel for ICE) named in baseline.
type transportCase struct {
	name     string // "s5b-direct"
	ns       string // transport namespace
	cfg      peerConfig
	baseline string // the throughput case's baseline
	// also are further baselines of the throughput case, each reported
	// with its ratio in Case.Also.
	also    []string
	latency bool // measure setup latency too
	// stream adds a case NAME-stream: the transport's stream alone, into
	// the sink application, compared with baseline/tcp-sha256.
	stream bool
	// ibb marks the in-band cases, whose size is -ibb-size and whose CPU
	// is compared with Prosody's.
	ibb bool
}

func transportCases() []transportCase {
	return []transportCase{
		// Its receiver hashes in a second goroutine: compared with
		// baseTCPFilePiped too, the ratio is the protocol's overhead
		// without that parallelism gain.
		{name: "s5b-direct", ns: socks5.NS, baseline: baseTCPFile, also: []string{baseTCPFilePiped}, latency: true, stream: true,
			cfg: peerConfig{s5b: socks5.Settings{NoProxyDiscovery: true}}},
		{name: "s5b-proxy65", ns: socks5.NS, baseline: baseTCPFile, latency: true, stream: true,
			cfg: peerConfig{s5b: socks5.Settings{NoDirect: true}}},
		{name: "ibb-4096", ns: ibb.NSTransport, baseline: baseB64Small, latency: true, ibb: true,
			cfg: peerConfig{ibbBlock: 4096}},
		{name: "ibb-65535", ns: ibb.NSTransport, baseline: baseB64Large, ibb: true,
			cfg: peerConfig{ibbBlock: 65535}},
		// The same without ibb.Payloads: the payloads go through
		// encoding/xml's character-by-character text path and its
		// rune-by-rune escaping, as before.
		{name: "ibb-65535-xmlpath", ns: ibb.NSTransport, baseline: baseB64Large, ibb: true,
			cfg: peerConfig{ibbBlock: 65535, ibbXMLPath: true}},
		// ICE over a data channel (webrtc-datachannel:1 dialect), host
		// candidates on loopback, the tuned default ice.Config; its
		// baseline is a bare pion data channel with default settings.
		{name: "ice", ns: ice.NSWebRTCDataChannel, baseline: baselinePion, latency: true,
			cfg: peerConfig{ice: true}},
	}
}

// baselineCase is a throughput baseline measured in the same run.
type baselineCase struct {
	name string
	note string
	run  func(ctx context.Context, h *harness, size int64) (float64, error) // MB/s
}

func baselineCases() []baselineCase {
	tcp := func(o tcpOpts, file bool) func(ctx context.Context, h *harness, size int64) (float64, error) {
		return func(ctx context.Context, h *harness, size int64) (float64, error) {
			if file {
				o.fileDir = h.env.Dir
			}
			d, err := tcpCopy(ctx, h.pattern, size, o)
			return MBPerS(size, d), err
		}
	}
	b64 := func(block int) func(ctx context.Context, h *harness, size int64) (float64, error) {
		return func(_ context.Context, h *harness, size int64) (float64, error) {
			return base64Rate(h.pattern, block, min(size, 256<<20), 300*time.Millisecond), nil
		}
	}
	return []baselineCase{
		{baseTCP, "loopback TCP, 64 KiB writes and reads, no processing", tcp(tcpOpts{}, false)},
		{baseTCPSHA256, "loopback TCP with sha-256 on both ends, as a file transfer hashes", tcp(tcpOpts{hash: true}, false)},
		{baseTCPFile, "the same, and the receiver writes to a file as filetransfer does", tcp(tcpOpts{hash: true}, true)},
		{baseTCPFilePiped, "the same, the receiver hashing in a second goroutine (256 KiB blocks, at most 3 out) as filetransfer's receiver does with a large file",
			tcp(tcpOpts{hash: true, pipelined: true}, true)},
		{baseB64Small, "base64-encoding 4096-byte blocks on one core: the ceiling of an IBB sender", b64(4096)},
		{baseB64Large, "base64-encoding 65535-byte blocks on one core", b64(65535)},
		{baselinePion, "bare pion/webrtc data channel, default settings (untuned), 16 KiB messages with pion's example flow control, loopback, one process, no hashing",
			func(ctx context.Context, _ *harness, size int64) (float64, error) {
				d, err := pionDataChannel(ctx, size)
				return MBPerS(size, d), err
			}},
	}
}

// pairedBaseline measures the named baseline once, for a round of a case
// compared with it: alternating baseline and case rounds exposes both to
// the same background load (a shared machine's throughput drifts by tens
// of percent within a minute).
func (h *harness) pairedBaseline(ctx context.Context, name string, size int64) (float64, error) {
	for _, b := range baselineCases() {
		if b.name == name {
			return b.run(ctx, h, size)
		}
	}
	return 0, fmt.Errorf("no baseline %q", name)
}

// round records one paired round: the case's rate and its ratio to the
// baseline measured just before.
func (c *Case) round(v, base float64) {
	c.Rounds = append(c.Rounds, v)
	c.BaselineRounds = append(c.BaselineRounds, base)
	if base > 0 {
		c.RatioRounds = append(c.RatioRounds, v/base)
	}
}

// roundAlso records the rate of a further baseline (c.Also[i]) measured
// with the last round.
func (c *Case) roundAlso(i int, base float64) {
	a := &c.Also[i]
	a.BaselineRounds = append(a.BaselineRounds, base)
	if base > 0 && len(c.Rounds) > 0 {
		a.RatioRounds = append(a.RatioRounds, c.Rounds[len(c.Rounds)-1]/base)
	}
}

// finishRounds sets the case's rate and ratios: the medians of its rounds
// and of its per-round ratios.
func (c *Case) finishRounds() {
	c.MBPerS = f64(Median(c.Rounds))
	if len(c.RatioRounds) > 0 {
		c.Ratio = f64(Median(c.RatioRounds))
	}
	for i := range c.Also {
		if a := &c.Also[i]; len(a.RatioRounds) > 0 {
			a.Ratio = f64(Median(a.RatioRounds))
		}
	}
}

// harness runs the cases of one bench process.
type harness struct {
	env *Env
	o   *options
	// log is the clients' logger (-v for debug), say the harness's
	// progress (always shown).
	log, say   *slog.Logger
	pattern    Pattern
	prosodyPid int
	cases      []Case
}

// caseContext bounds one case by -timeout, so that a hung transfer fails
// its case instead of the run.
func (h *harness) caseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.o.timeout)
}

func (h *harness) add(c Case) {
	if c.Error != "" {
		h.say.Error("bench: case failed", "case", c.Name, "err", c.Error)
	} else {
		h.say.Info("bench: case done", "case", c.Name)
	}
	h.cases = append(h.cases, c)
}

// resetPeak makes the next VmHWM reading a peak of what follows: it
// returns freed heap to the system and resets VmHWM to the current RSS.
func resetPeak() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = ResetPeak()
}

// rssMB reads VmRSS in MB, 0 when unknown.
func rssMB() float64 {
	m, err := SelfMemory()
	if err != nil {
		return 0
	}
	return float64(m.RSS) / 1e6
}

// peakMB reads VmHWM in MB.
func peakMB() *float64 {
	m, err := SelfMemory()
	if err != nil {
		return nil
	}
	return f64(float64(m.HWM) / 1e6)
}

// runBaselines measures the baselines, rounds times each (median).
func (h *harness) runBaselines(ctx context.Context) {
	for _, b := range baselineCases() {
		if !h.o.match(b.name) {
			continue
		}
		c := Case{Name: b.name, Bytes: h.o.size, Note: b.note, Process: "parent"}
		for range h.o.rounds {
			v, err := b.run(ctx, h, h.o.size)
			if err != nil {
				c.Error = err.Error()
				break
			}
			c.Rounds = append(c.Rounds, v)
		}
		if c.Error == "" {
			c.MBPerS = f64(Median(c.Rounds))
		}
		h.add(c)
	}
}

// runThroughput sends a file of -size (-ibb-size for IBB) over each
// transport, rounds times, after a warm-up transfer.
func (h *harness) runThroughput(ctx context.Context) {
	for _, tc := range transportCases() {
		name := "throughput/" + tc.name
		size := h.o.size
		if tc.ibb {
			size = h.o.ibbSize
		}
		if h.o.match(name) {
			c := Case{Name: name, Bytes: size, Baseline: tc.baseline, Process: "parent (sender); the receiver runs in a child process",
				Note: "filetransfer.Sender to a Handler writing to disk, receiver in its own process"}
			for _, b := range tc.also {
				c.Also = append(c.Also, Comparison{Baseline: b})
			}
			if err := h.throughput(ctx, tc, size, &c); err != nil {
				c.Error = err.Error()
				c.MBPerS = nil
			}
			h.add(c)
		}
		if tc.stream && h.o.match(name+"-stream") {
			c := Case{Name: name + "-stream", Bytes: size, Baseline: baseTCPSHA256, Process: "parent (both peers)",
				Note: "the transport alone: Jingle session + stream into the sink application, sha-256 both ends, no disk"}
			if err := h.streamThroughput(ctx, tc, size, &c); err != nil {
				c.Error = err.Error()
				c.MBPerS = nil
			}
			h.add(c)
		}
	}
}

func (h *harness) throughput(ctx context.Context, tc transportCase, size int64, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	cfg := tc.cfg
	cfg.resource = "tput-" + tc.name
	alice, err := login(ctx, h.env, h.env.Alice, cfg, h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	bob, err := h.startReceiver(ctx, tc, cfg.resource)
	if err != nil {
		return err
	}
	defer bob.close()
	// Warm-up: proxy discovery (cached by the Method), first TLS records,
	// lazily built state.
	if _, err := sendFile(ctx, alice, bob, tc.ns, h.pattern.Source("warmup.bin", 1<<20), false); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	rounds := h.o.rounds
	if tc.ibb {
		rounds = h.o.ibbRounds
	}
	cpu := newCPUMeter(h.prosodyPid, bob.pid())
	return h.measureRounds(ctx, c, cpu, rounds, tc.baseline, size, func(i int) (time.Duration, error) {
		src := h.pattern.Source(fmt.Sprintf("%s-%d.bin", tc.name, i), size)
		t, err := sendFile(ctx, alice, bob, tc.ns, src, size >= 64<<20)
		return t.Elapsed, err
	})
}

// measureRounds runs n rounds of send (given the round's number) and
// records in c each round's MB/s against the named baseline, measured
// just before it, and against each of c.Also's, measured just after it
// (so that the first stays as paired as before); the CPU of the rounds;
// and the peak RSS over them.
func (h *harness) measureRounds(ctx context.Context, c *Case, cpu *cpuMeter, n int, baseline string, size int64,
	send func(i int) (time.Duration, error)) error {
	var peak float64
	for i := range n {
		base, err := h.pairedBaseline(ctx, baseline, size)
		if err != nil {
			return err
		}
		resetPeak()
		cpu.begin()
		elapsed, err := send(i)
		cpu.end()
		if err != nil {
			return err
		}
		if p := peakMB(); p != nil {
			peak = max(peak, *p)
		}
		c.round(MBPerS(size, elapsed), base)
		for j := range c.Also {
			v, err := h.pairedBaseline(ctx, c.Also[j].Baseline, size)
			if err != nil {
				return err
			}
			c.roundAlso(j, v)
		}
	}
	c.CPU = cpu.use()
	c.PeakRSSMB = f64(peak)
	c.finishRounds()
	return nil
}

func (h *harness) streamThroughput(ctx context.Context, tc transportCase, size int64, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	cfg := tc.cfg
	cfg.resource = "stream-" + tc.name
	alice, bob, err := loginPair(ctx, h.env, cfg, h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	defer bob.close()
	if _, err := sendStream(ctx, alice, bob, tc.ns, h.pattern, 1<<20); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return h.measureRounds(ctx, c, newCPUMeter(h.prosodyPid, 0), h.o.rounds, baseTCPSHA256, size, func(int) (time.Duration, error) {
		r, err := sendStream(ctx, alice, bob, tc.ns, h.pattern, size)
		return r.Elapsed, err
	})
}

// runLatency measures session-initiate to first payload byte over each
// transport with latency set, call set-up to the first RTP packet
// (latency/call), and the IQ round trip through the server.
func (h *harness) runLatency(ctx context.Context) {
	if h.o.match(baseIQRTT) {
		c := Case{Name: baseIQRTT, Process: "parent",
			Note: "disco#info from one client to the other through Prosody and back"}
		if err := h.iqRTT(ctx, &c); err != nil {
			c.Error = err.Error()
		}
		h.add(c)
	}
	for _, tc := range transportCases() {
		name := "latency/" + tc.name
		if !tc.latency || !h.o.match(name) {
			continue
		}
		c := Case{Name: name, Baseline: baseIQRTT, Process: "parent (both peers)",
			Note: "Sender.Send of a 1 KiB file to the receiver's first byte on disk"}
		if err := h.latency(ctx, tc, &c); err != nil {
			c.Error = err.Error()
			c.MS, c.P95MS = nil, nil
		}
		h.add(c)
	}
	if h.o.match(caseCall) {
		c := Case{Name: caseCall, Baseline: baseIQRTT, Process: "parent (both peers)",
			Note: "rtp.Handler.Place to the callee's bare JID (XEP-0353 propose, proceed, session-initiate, accept, ICE + DTLS-SRTP on loopback) to the first Opus RTP packet received by either side"}
		if err := h.callLatency(ctx, &c); err != nil {
			c.Error = err.Error()
			c.MS, c.P95MS = nil, nil
		}
		h.add(c)
	}
}

func setPercentiles(c *Case, samples []time.Duration) error {
	p50, err := Percentile(samples, 50)
	if err != nil {
		return err
	}
	p95, _ := Percentile(samples, 95)
	c.MS, c.P95MS, c.Samples = f64(ms(p50)), f64(ms(p95)), len(samples)
	return nil
}

func (h *harness) iqRTT(ctx context.Context, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	cfg := peerConfig{resource: "rtt"}
	alice, bob, err := loginPair(ctx, h.env, cfg, h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	defer bob.close()
	var samples []time.Duration
	for i := range h.o.sessions + 5 {
		t0 := time.Now()
		if _, err := xmppclient.GetInfo(ctx, alice.c.Session(), bob.jid, ""); err != nil {
			return err
		}
		if i >= 5 { // warm-up
			samples = append(samples, time.Since(t0))
		}
	}
	return setPercentiles(c, samples)
}

func (h *harness) latency(ctx context.Context, tc transportCase, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	cfg := tc.cfg
	cfg.resource = "lat-" + tc.name
	cfg.probe = true
	alice, bob, err := loginPair(ctx, h.env, cfg, h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	defer bob.close()
	var samples []time.Duration
	const warmup = 2
	for i := range h.o.sessions + warmup {
		name := fmt.Sprintf("lat-%s-%d.bin", tc.name, i)
		t, err := sendFile(ctx, alice, bob, tc.ns, h.pattern.Source(name, 1<<10), false)
		if err != nil {
			return err
		}
		v, ok := bob.firstByte.LoadAndDelete(name)
		if !ok {
			return fmt.Errorf("%s: no first-byte time", name)
		}
		if i >= warmup {
			samples = append(samples, v.(time.Time).Sub(t.Start))
		}
	}
	return setPercentiles(c, samples)
}
