package linklocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/mdns/v2"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"
)

// ServiceType is the DNS-SD service type of link-local messaging.
const ServiceType = "_presence._tcp"

// ErrNoMulticast is wrapped by Start's error when multicast DNS cannot run:
// no usable interface (up, with the MULTICAST flag and an IPv4 address),
// or the mDNS port cannot be bound. Set Node.NoMulticast to run without it
// (peers are then added with AddPeer).
var ErrNoMulticast = errors.New("linklocal: multicast DNS unavailable")

const (
	mdnsGroup      = "224.0.0.251"
	mdnsPort       = 5353
	hostTTL        = 120  // SRV and A records (RFC 6762 §10)
	otherTTL       = 4500 // PTR and TXT records
	cacheFlushBit  = 1 << 15
	maxMDNSPacket  = 9000
	defaultQueryIv = 5 * time.Second
)

// browseEvent is what the mDNS layer reports about a service instance.
type browseEvent struct {
	instance string
	host     string
	port     uint16
	addr     netip.Addr
	txt      []string
	gone     bool
}

// dnssdConfig configures the mDNS layer.
type dnssdConfig struct {
	instance string // user@machine
	host     string // machine, without .local
	port     uint16
	txt      []string
	ifaces   []net.Interface
	interval time.Duration
	log      *slog.Logger
	events   func(browseEvent)
}

// dnssd advertises one _presence._tcp instance and browses for others. It
// uses pion/mdns for the responder, the cache and the browsing, and a
// socket of its own on port 5353 for what pion does not do: unsolicited
// announcements when starting (RFC 6762 §8.3), goodbye packets when
// stopping (§10.1, XEP-0174 §4.4), and noticing the goodbyes of others.
type dnssd struct {
	cfg    dnssdConfig
	ifaces []net.Interface
	conn   *mdns.Conn
	raw    *ipv4.PacketConn

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	txt          []string
	browseCancel context.CancelFunc
	lastBrowse   time.Time
	closed       bool
}

// minRefresh is the least time between two browse restarts asked for by
// refresh: incoming connections ask for one each, and must not turn into a
// flood of multicast queries.
const minRefresh = time.Second

// refresh restarts browsing, so that a query goes out now, unless that was
// done less than minRefresh ago.
func (d *dnssd) refresh() {
	d.mu.Lock()
	recent := time.Since(d.lastBrowse) < minRefresh
	d.mu.Unlock()
	if !recent {
		_ = d.browse()
	}
}

// selectInterfaces returns the interfaces mDNS runs on: the named ones
// (each must be up and have the MULTICAST flag), or every up, multicast,
// non-loopback interface with an IPv4 address.
func selectInterfaces(names []string) ([]net.Interface, error) {
	if len(names) > 0 {
		var out []net.Interface
		for _, n := range names {
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				return nil, fmt.Errorf("%w: interface %q: %w", ErrNoMulticast, n, err)
			}
			if ifi.Flags&net.FlagUp == 0 {
				return nil, fmt.Errorf("%w: interface %s is down", ErrNoMulticast, n)
			}
			if ifi.Flags&net.FlagMulticast == 0 {
				return nil, fmt.Errorf("%w: interface %s has no MULTICAST flag (ip link set %s multicast on)", ErrNoMulticast, n, n)
			}
			if _, ok := ifaceIPv4(*ifi); !ok {
				return nil, fmt.Errorf("%w: interface %s has no IPv4 address", ErrNoMulticast, n)
			}
			out = append(out, *ifi)
		}
		return out, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoMulticast, err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if _, ok := ifaceIPv4(ifi); ok {
			out = append(out, ifi)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no interface is up with the MULTICAST flag and an IPv4 address", ErrNoMulticast)
	}
	return out, nil
}

// ifaceIPv4 returns the first IPv4 address of ifi.
func ifaceIPv4(ifi net.Interface) (netip.Addr, bool) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

func startDNSSD(ctx context.Context, cfg dnssdConfig) (d *dnssd, err error) {
	ifaces := cfg.ifaces
	if cfg.interval <= 0 {
		cfg.interval = defaultQueryIv
	}
	d = &dnssd{cfg: cfg, ifaces: ifaces, txt: cfg.txt}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			d.cancel()
			if d.conn != nil {
				_ = d.conn.Close()
			}
			if d.raw != nil {
				_ = d.raw.Close()
			}
			d.wg.Wait()
		}
	}()

	lc := net.ListenConfig{Control: reuseControl}
	group, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(mdnsGroup, fmt.Sprint(mdnsPort)))
	if err != nil {
		return nil, fmt.Errorf("%w: binding %s:%d: %w", ErrNoMulticast, mdnsGroup, mdnsPort, err)
	}
	loopback := false
	for _, ifi := range ifaces {
		loopback = loopback || ifi.Flags&net.FlagLoopback != 0
	}
	conn, err := mdns.NewServer(ipv4.NewPacketConn(group), nil,
		mdns.WithName(cfg.instance),
		mdns.WithInterfaces(ifaces...),
		mdns.WithIncludeLoopback(loopback),
		mdns.WithLocalNames(cfg.host+".local"),
		mdns.WithQueryInterval(cfg.interval),
		mdns.WithLoggerFactory(pionLogs{cfg.log}),
		mdns.WithService(d.service(cfg.txt)),
	)
	if err != nil {
		_ = group.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoMulticast, err)
	}
	d.conn = conn

	rc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", mdnsPort))
	if err != nil {
		return nil, fmt.Errorf("%w: binding port %d: %w", ErrNoMulticast, mdnsPort, err)
	}
	d.raw = ipv4.NewPacketConn(rc)
	joined := 0
	gaddr := &net.UDPAddr{IP: net.ParseIP(mdnsGroup)}
	for i := range ifaces {
		if err := d.raw.JoinGroup(&ifaces[i], gaddr); err != nil {
			cfg.log.Debug("linklocal: joining the mDNS group", "interface", ifaces[i].Name, "error", err)
			continue
		}
		joined++
	}
	if joined == 0 {
		return nil, fmt.Errorf("%w: cannot join %s on any interface", ErrNoMulticast, mdnsGroup)
	}
	_ = d.raw.SetControlMessage(ipv4.FlagInterface, true)
	_ = d.raw.SetMulticastTTL(255)
	_ = d.raw.SetMulticastLoopback(true)

	d.wg.Add(2)
	go d.readLoop()
	go d.announceLoop()
	conn.OnServiceDiscovered(d.discovered)
	if err := d.browse(); err != nil {
		return nil, fmt.Errorf("%w: browsing: %w", ErrNoMulticast, err)
	}
	return d, nil
}

// service is the pion service instance for our advertisement.
func (d *dnssd) service(txt []string) mdns.ServiceInstance {
	var entries []mdns.TXTEntry
	for _, s := range txt {
		k, v, _ := strings.Cut(s, "=")
		entries = append(entries, mdns.NewTXTString(k, v))
	}
	return mdns.ServiceInstance{
		Instance: d.cfg.instance,
		Service:  ServiceType,
		Domain:   "local",
		Host:     d.cfg.host + ".local.",
		Port:     d.cfg.port,
		Text:     entries,
	}
}

// browse (re)starts browsing: a new pion browse session forgets what the
// previous one had seen, so that an instance that said goodbye and came
// back is reported again.
func (d *dnssd) browse() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if d.browseCancel != nil {
		d.browseCancel()
	}
	ctx, cancel := context.WithCancel(d.ctx)
	d.browseCancel = cancel
	d.lastBrowse = time.Now()
	return d.conn.Browse(ctx, ServiceType)
}

// discovered is pion's browse callback.
func (d *dnssd) discovered(ev mdns.ServiceEvent) {
	if !strings.EqualFold(ev.Instance.Service, ServiceType) {
		return
	}
	txt := make([]string, 0, len(ev.Instance.Text))
	for _, e := range ev.Instance.Text {
		if e.Value == nil {
			txt = append(txt, e.Key)
		} else {
			txt = append(txt, e.Key+"="+string(e.Value))
		}
	}
	d.cfg.events(browseEvent{
		instance: ev.Instance.Instance,
		host:     ev.Instance.Host,
		port:     ev.Instance.Port,
		addr:     ev.Addr,
		txt:      txt,
	})
}

// setTXT replaces the advertised TXT record (pion announces the change).
func (d *dnssd) setTXT(txt []string) error {
	d.mu.Lock()
	d.txt = txt
	d.mu.Unlock()
	return d.conn.UpdateTXT(d.cfg.instance, ServiceType, d.service(txt).Text)
}

// readLoop watches the mDNS group for goodbye packets (RFC 6762 §10.1):
// a PTR record of _presence._tcp.local. with TTL 0 removes its instance.
func (d *dnssd) readLoop() {
	defer d.wg.Done()
	buf := make([]byte, maxMDNSPacket)
	svcName := ServiceType + ".local."
	for {
		n, _, _, err := d.raw.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || d.ctx.Err() != nil {
				return
			}
			continue
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil || !h.Response {
			continue
		}
		if err := p.SkipAllQuestions(); err != nil {
			continue
		}
		var gone []string
		for {
			rh, err := p.AnswerHeader()
			if err != nil {
				break
			}
			if rh.Type != dnsmessage.TypePTR || rh.TTL != 0 || !strings.EqualFold(rh.Name.String(), svcName) {
				_ = p.SkipAnswer()
				continue
			}
			ptr, err := p.PTRResource()
			if err != nil {
				break
			}
			target := ptr.PTR.String()
			if len(target) > len(svcName)+1 && strings.EqualFold(target[len(target)-len(svcName)-1:], "."+svcName) {
				gone = append(gone, target[:len(target)-len(svcName)-1])
			}
		}
		for _, inst := range gone {
			if inst == d.cfg.instance {
				continue
			}
			d.cfg.events(browseEvent{instance: inst, gone: true})
		}
		if len(gone) > 0 {
			_ = d.browse()
		}
	}
}

// announceLoop sends the unsolicited announcements of RFC 6762 §8.3: two,
// one second apart.
func (d *dnssd) announceLoop() {
	defer d.wg.Done()
	d.send(hostTTL, otherTTL)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
		d.send(hostTTL, otherTTL)
	case <-d.ctx.Done():
	}
}

// send multicasts our PTR, SRV, TXT and A records on every interface, with
// the A record of that interface; TTL 0 makes it a goodbye.
func (d *dnssd) send(hostTTL, otherTTL uint32) {
	d.mu.Lock()
	txt := d.txt
	d.mu.Unlock()
	dst := &net.UDPAddr{IP: net.ParseIP(mdnsGroup), Port: mdnsPort}
	for i := range d.ifaces {
		ifi := d.ifaces[i]
		addr, ok := ifaceIPv4(ifi)
		if !ok {
			continue
		}
		b, err := d.records(txt, addr, hostTTL, otherTTL)
		if err != nil {
			d.cfg.log.Warn("linklocal: building mDNS announcement", "error", err)
			return
		}
		if _, err := d.raw.WriteTo(b, &ipv4.ControlMessage{IfIndex: ifi.Index}, dst); err != nil {
			d.cfg.log.Debug("linklocal: sending mDNS announcement", "interface", ifi.Name, "error", err)
		}
	}
}

// records builds an mDNS response with our four records.
func (d *dnssd) records(txt []string, addr netip.Addr, hostTTL, otherTTL uint32) ([]byte, error) {
	svc, err := dnsmessage.NewName(ServiceType + ".local.")
	if err != nil {
		return nil, err
	}
	inst, err := dnsmessage.NewName(d.cfg.instance + "." + ServiceType + ".local.")
	if err != nil {
		return nil, err
	}
	host, err := dnsmessage.NewName(d.cfg.host + ".local.")
	if err != nil {
		return nil, err
	}
	if len(txt) == 0 {
		txt = []string{""}
	}
	flush := dnsmessage.ClassINET | cacheFlushBit
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{Response: true, Authoritative: true})
	b.EnableCompression()
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if err := b.PTRResource(dnsmessage.ResourceHeader{Name: svc, Class: dnsmessage.ClassINET, TTL: otherTTL}, dnsmessage.PTRResource{PTR: inst}); err != nil {
		return nil, err
	}
	if err := b.SRVResource(dnsmessage.ResourceHeader{Name: inst, Class: flush, TTL: hostTTL}, dnsmessage.SRVResource{Port: d.cfg.port, Target: host}); err != nil {
		return nil, err
	}
	if err := b.TXTResource(dnsmessage.ResourceHeader{Name: inst, Class: flush, TTL: otherTTL}, dnsmessage.TXTResource{TXT: txt}); err != nil {
		return nil, err
	}
	if err := b.AResource(dnsmessage.ResourceHeader{Name: host, Class: flush, TTL: hostTTL}, dnsmessage.AResource{A: addr.As4()}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// close says goodbye and stops everything.
func (d *dnssd) close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.send(0, 0)
	err := d.conn.Close()
	if cerr := d.raw.Close(); err == nil {
		err = cerr
	}
	d.wg.Wait()
	return err
}

// pionLogs routes pion's logs to slog, one level lower than pion's: pion
// warns about conditions (no IPv6, a malformed packet from someone) that
// are normal on a LAN.
type pionLogs struct{ l *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.l.With("scope", "pion/"+scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) Trace(msg string)                  {}
func (p pionLogger) Tracef(format string, args ...any) {}
func (p pionLogger) Debug(msg string)                  { p.l.Debug(msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pionLogger) Info(msg string)                   { p.l.Debug(msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pionLogger) Warn(msg string)                   { p.l.Debug(msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pionLogger) Error(msg string)                  { p.l.Warn(msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.l.Warn(fmt.Sprintf(format, args...)) }
