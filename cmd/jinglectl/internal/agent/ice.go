package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/pion/stun"

	"github.com/jinglekit/jinglekit/transports/ice"
)

// ParseICEServer parses a STUN or TURN server of the configuration
// (transfer.ice_servers): an RFC 7064/7065 URI with the TURN credentials,
// if any, as user information before the host, percent-encoded where they
// hold ':' or '@':
//
//	stun:stun.example.org:3478
//	turn:user:secret@turn.example.org:3478?transport=udp
//	turns:user:secret@turn.example.org:5349?transport=tcp
//
// A TURN server needs a user and a password; a STUN server takes none.
func ParseICEServer(s string) (ice.Server, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
		return ice.Server{}, fmt.Errorf("ICE server %q: want stun:, stuns:, turn: or turns:", s)
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	var srv ice.Server
	if i := strings.LastIndex(hostport, "@"); i >= 0 {
		user, pass, _ := strings.Cut(hostport[:i], ":")
		var err1, err2 error
		srv.Username, err1 = url.PathUnescape(user)
		srv.Password, err2 = url.PathUnescape(pass)
		if err := errors.Join(err1, err2); err != nil {
			return ice.Server{}, fmt.Errorf("ICE server %q: credentials: %w", s, err)
		}
		hostport = hostport[i+1:]
	}
	srv.URL = scheme + ":" + hostport
	if hasQuery {
		srv.URL += "?" + query
	}
	u, err := stun.ParseURI(srv.URL)
	if err != nil {
		return ice.Server{}, fmt.Errorf("ICE server %q: %w", s, err)
	}
	if u.Port <= 0 || u.Port > 65535 {
		return ice.Server{}, fmt.Errorf("ICE server %q: invalid port", s)
	}
	isTURN := strings.HasPrefix(scheme, "turn")
	switch {
	case isTURN && (srv.Username == "" || srv.Password == ""):
		return ice.Server{}, fmt.Errorf("ICE server %q: TURN needs user:password@ before the host", s)
	case !isTURN && (srv.Username != "" || srv.Password != ""):
		return ice.Server{}, fmt.Errorf("ICE server %q: STUN takes no credentials", s)
	}
	return srv, nil
}

// ICEConfig is the configuration of the ICE transport methods for an
// account connected to a server: the servers of transfer.ice_servers when
// there are any, else those the user's server announces (XEP-0215);
// relayed candidates only with transfer.ice_relay_only or
// transfer.no_direct (no address of this host reaches the peer; without a
// TURN server ICE then fails and the next transport is tried); loopback
// host candidates when transfer.allow_loopback is set. Servers that do not parse are skipped
// (Load rejects them).
func (c Config) ICEConfig(log *slog.Logger) ice.Config {
	cfg := ice.Config{RelayOnly: c.ICERelayOnly || c.NoDirect, IncludeLoopback: c.AllowLoopback, Logger: log}
	for _, s := range c.ICEServers {
		if srv, err := ParseICEServer(s); err == nil {
			cfg.Servers = append(cfg.Servers, srv)
		}
	}
	if len(cfg.Servers) == 0 {
		cfg.Discovery = &ice.Discovery{}
	}
	return cfg
}

// localICEConfig is the ICE configuration of serverless mode: host
// candidates only (no STUN or TURN server, no discovery).
func localICEConfig(allowLoopback bool, log *slog.Logger) ice.Config {
	return ice.Config{IncludeLoopback: allowLoopback, Logger: log}
}

// iceMethods returns the ICE transport methods, one per dialect, in order
// of preference: webrtc-datachannel:1, then XEP-0343 (ICE-UDP with
// <sctpmap/>).
func iceMethods(cfg ice.Config) []*ice.Method {
	return []*ice.Method{
		{Dialect: ice.DialectWebRTCDataChannel, Config: cfg},
		{Dialect: ice.DialectXEP0343, Config: cfg},
	}
}
