package socks5

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"
)

// interfaceAddrs returns the addresses to offer as direct candidates when
// none are configured: those of the interfaces that are up, IPv4 first,
// without link-local, multicast and unspecified addresses, and without
// loopback unless allowLoopback.
func interfaceAddrs(allowLoopback bool) ([]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("socks5: listing interfaces: %w", err)
	}
	var v4, v6 []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if !offerable(ip, allowLoopback) {
				continue
			}
			if ip.Is4() {
				v4 = append(v4, ip)
			} else {
				v6 = append(v6, ip)
			}
		}
	}
	out := append(v4, v6...)
	slices.SortStableFunc(out, func(a, b netip.Addr) int {
		// Loopback last: a peer on another host cannot use it.
		return boolCmp(a.IsLoopback(), b.IsLoopback())
	})
	return slices.Compact(out), nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// offerable reports whether ip may be offered (or connected to) as a
// direct candidate.
func offerable(ip netip.Addr, allowLoopback bool) bool {
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsMulticast(),
		ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return false
	case ip.IsLoopback():
		return allowLoopback
	}
	// 0.0.0.0/8 and the IPv4 broadcast address are not hosts.
	if ip.Is4() {
		b := ip.As4()
		if b[0] == 0 || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return false
		}
	}
	return true
}

// dialer returns a net.Dialer that refuses, after name resolution and
// before connecting, any address a peer must not make us connect to:
// loopback (unless allowed), unspecified, multicast, link-local and
// broadcast addresses.
func dialer(allowLoopback bool) *net.Dialer {
	return &net.Dialer{
		ControlContext: func(_ context.Context, network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("socks5: refusing to connect to %q: %w", address, err)
			}
			if !offerable(ap.Addr().Unmap(), allowLoopback) {
				return fmt.Errorf("socks5: refusing to connect to %s: address not allowed", address)
			}
			return nil
		},
	}
}

// interfaceAddrsTTL is how long a Method reuses the interface addresses
// it listed: listing them takes a netlink dump per interface (tens of kB
// of garbage and several system calls), too much for every session when
// hundreds start at once, and interfaces seldom change faster.
const interfaceAddrsTTL = 5 * time.Second

// addrCache remembers the last listing of the interface addresses.
type addrCache struct {
	// list and ttl are interfaceAddrs and interfaceAddrsTTL when zero
	// (tests set them).
	list func(allowLoopback bool) ([]netip.Addr, error)
	ttl  time.Duration

	mu       sync.Mutex
	at       time.Time
	loopback bool
	addrs    []netip.Addr
}

// get returns the interface addresses, listed at most ttl ago.
func (c *addrCache) get(allowLoopback bool) ([]netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.ttl
	if ttl == 0 {
		ttl = interfaceAddrsTTL
	}
	if c.addrs != nil && c.loopback == allowLoopback && time.Since(c.at) < ttl {
		return slices.Clone(c.addrs), nil
	}
	list := c.list
	if list == nil {
		list = interfaceAddrs
	}
	addrs, err := list(allowLoopback)
	if err != nil {
		// Not remembered: the next transport tries again.
		return nil, err
	}
	c.at, c.loopback, c.addrs = time.Now(), allowLoopback, slices.Clip(addrs)
	if c.addrs == nil {
		c.addrs = []netip.Addr{}
	}
	return slices.Clone(c.addrs), nil
}
