package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/xmppclient"
)

const discoUsage = `Usage: jinglectl disco [flags] JID

Disco asks JID what it supports (XEP-0030 service discovery) and shows the
Jingle applications, transports and hash functions it advertises — the
first thing to check when a transfer with another client fails.

For a bare JID the online resources are found from presence (which the
server sends for contacts whose presence you are subscribed to) and each
is asked; when none is visible, the bare JID itself is asked (the account,
answered by its server).

Example:
  jinglectl disco --jid alice@example.org bob@example.org/phone
`

// nsInfo names a namespace.
type nsInfo struct{ ns, name, spec string }

var (
	knownApps = []nsInfo{
		{filetransfer.NS, "file-transfer:5", "XEP-0234"},
		{filetransfer.NS4, "file-transfer:4", "XEP-0234 (old)"},
		{filetransfer.NS3, "file-transfer:3", "XEP-0234 (old)"},
		{"urn:xmpp:jingle:apps:rtp:1", "rtp", "XEP-0167"},
		{"urn:xmpp:jingle:apps:rtp:audio", "rtp audio", "XEP-0167"},
		{"urn:xmpp:jingle:apps:rtp:video", "rtp video", "XEP-0167"},
		{"urn:xmpp:jingle:apps:xmlstream:0", "xml streams", "XEP-0247"},
	}
	knownTransports = []nsInfo{
		{"urn:xmpp:jingle:transports:s5b:1", "s5b", "XEP-0260"},
		{"urn:xmpp:jingle:transports:ibb:1", "ibb", "XEP-0261"},
		{"urn:xmpp:jingle:transports:ice-udp:1", "ice-udp", "XEP-0176"},
		{"urn:xmpp:jingle:transports:raw-udp:1", "raw-udp", "XEP-0177"},
		{"urn:xmpp:jingle:transports:ice:0", "ice", "XEP-0371"},
		{"urn:xmpp:jingle:transports:webrtc-datachannel:1", "webrtc-datachannel", "XEP-0343"},
		{"urn:xmpp:jingle:transports:dtls-sctp:1", "dtls-sctp", "XEP-0343 (old)"},
	}
	knownOther = []nsInfo{
		{"urn:xmpp:jingle:apps:dtls:0", "dtls", "XEP-0320"},
		{"urn:xmpp:jingle:security:xtls:0", "xtls", "XEP-0391"},
		{"urn:xmpp:jingle:jet:0", "jet", "XEP-0391"},
		{"urn:xmpp:jingle:jet-omemo:0", "jet-omemo", "XEP-0396"},
		{"urn:xmpp:jingle-message:0", "jingle message initiation", "XEP-0353"},
		{"urn:xmpp:jingle:apps:rtp:rtcp-fb:0", "rtcp-fb", "XEP-0293"},
		{"urn:xmpp:jingle:apps:rtp:rtp-hdrext:0", "rtp-hdrext", "XEP-0294"},
		{"urn:xmpp:jingle:apps:grouping:0", "grouping", "XEP-0338"},
		{"urn:xmpp:jingle:apps:rtp:ssma:0", "ssma", "XEP-0339"},
		{"http://jabber.org/protocol/ibb", "in-band bytestreams", "XEP-0047"},
		{"http://jabber.org/protocol/bytestreams", "socks5 bytestreams", "XEP-0065"},
		{"urn:xmpp:hashes:2", "hashes", "XEP-0300"},
		{"urn:xmpp:hashes:1", "hashes (old)", "XEP-0300"},
		{"http://jabber.org/protocol/si", "stream initiation (pre-Jingle)", "XEP-0095"},
		{"http://jabber.org/protocol/si/profile/file-transfer", "SI file transfer (pre-Jingle)", "XEP-0096"},
	}
)

// discoReport is the JSON output of disco, one per entity.
type discoReport struct {
	JID          string   `json:"jid"`
	Identities   []string `json:"identities"`
	Jingle       bool     `json:"jingle"`
	Applications []string `json:"applications"`
	Transports   []string `json:"transports"`
	Hashes       []string `json:"hashes"`
	Other        []string `json:"other"`
	Features     []string `json:"features"`
	FileTransfer bool     `json:"file_transfer"`
	AutoOffer    []string `json:"auto_transports,omitempty"`
	// OMEMODevices are the OMEMO 0.3 device ids the account lists (for
	// JET-OMEMO encryption), when this side could read them.
	OMEMODevices []uint32 `json:"omemo_devices,omitempty"`
	Error        string   `json:"error,omitempty"`
}

func runDisco(args []string, e env) int {
	fs := newFlagSet("disco")
	acct := addAccountFlags(fs)
	jsonOut := fs.Bool("json", false, "print one JSON object per entity")
	wait := fs.Duration("presence-wait", 0, "how long to wait for a bare JID's presence: `DURATION` (default 5s)")
	usage := func(w io.Writer) { commandUsage(w, discoUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 1 {
		return usageLine(e, "disco", "want one JID")
	}
	target, err := jid.Parse(fs.Arg(0))
	if err != nil || fs.Arg(0) == "" {
		return fail(e, "disco", usagef("invalid JID %q", fs.Arg(0)))
	}
	cfg, err := loadConfig(e, acct, nil)
	if err != nil {
		return fail(e, "disco", err)
	}
	if *wait > 0 {
		cfg.PresenceWait = *wait
	}
	if err := checkAccount(cfg); err != nil {
		return fail(e, "disco", err)
	}
	if cfg.InsecureSkipVerify {
		fmt.Fprintln(e.stderr, "jinglectl: warning: --insecure-skip-verify: the server certificate is not verified (local testing only)")
	}
	log := newLogger(e, cfg.LogLevel, "", "warn")
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := agent.Connect(ctx, agent.Options{Config: cfg, Logger: log, Priority: -1})
	if err != nil {
		return fail(e, "disco", connectError(cfg, err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	targets := []jid.JID{target}
	if target.Resourcepart() == "" {
		if rs := conn.OnlineResources(ctx, target, cfg.PresenceWait); len(rs) > 0 {
			targets = rs
		}
	}
	status := exitOK
	answered := false
	var devices []uint32
	if om := conn.OMEMO(); om != nil {
		devices, _ = om.PeerDevices(ctx, target)
	}
	for _, t := range targets {
		info, err := conn.PeerInfo(ctx, t)
		rep := report(t, info)
		rep.OMEMODevices = devices
		if err != nil {
			rep.Error = err.Error()
			if status == exitOK {
				status = errStatus(err)
			}
		} else {
			answered = true
		}
		if *jsonOut {
			b, _ := json.Marshal(rep)
			fmt.Fprintf(e.stdout, "%s\n", b)
			continue
		}
		printReport(e.stdout, rep)
	}
	if answered {
		status = exitOK
	}
	if status != exitOK && !*jsonOut {
		fmt.Fprintf(e.stderr, "jinglectl: disco: %s did not answer\n", target)
	}
	return status
}

func report(j jid.JID, info xmppclient.Info) discoReport {
	r := discoReport{JID: j.String(), Features: slices.Clone(info.Features)}
	if r.Features == nil {
		r.Features = []string{}
	}
	for _, id := range info.Identities {
		s := id.Category + "/" + id.Type
		if id.Name != "" {
			s += " (" + id.Name + ")"
		}
		r.Identities = append(r.Identities, s)
	}
	r.Jingle = info.HasFeature(jingle.NS)
	r.FileTransfer = agent.SupportsFileTransfer(info)
	known := map[string]bool{jingle.NS: true, xmppclient.NSDiscoInfo: true, xmppclient.NSCaps: true}
	pick := func(list []nsInfo) []string {
		out := []string{}
		for _, n := range list {
			if info.HasFeature(n.ns) {
				out = append(out, n.name)
				known[n.ns] = true
			}
		}
		return out
	}
	r.Applications = pick(knownApps)
	r.Transports = pick(knownTransports)
	r.Hashes = []string{}
	for _, f := range info.Features {
		if algo, ok := strings.CutPrefix(f, filetransfer.NSHashFunctionPrefix); ok {
			r.Hashes = append(r.Hashes, algo)
			known[f] = true
		}
	}
	r.Other = pick(knownOther)
	for _, f := range info.Features {
		if !known[f] && strings.Contains(f, "jingle") {
			r.Other = append(r.Other, f)
		}
	}
	if r.FileTransfer {
		r.AutoOffer, _ = transportNames(info)
	}
	return r
}

func transportNames(info xmppclient.Info) ([]string, error) {
	nss, err := agent.ChooseTransports(agent.TransportAuto, info)
	names := make([]string, len(nss))
	for i, ns := range nss {
		names[i] = agent.TransportName(ns)
	}
	return names, err
}

func printReport(w io.Writer, r discoReport) {
	list := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return safeText(strings.Join(s, ", "))
	}
	r.JID, r.Error = safeText(r.JID), safeText(r.Error)
	fmt.Fprintf(w, "%s\n", r.JID)
	if r.Error != "" {
		fmt.Fprintf(w, "  error:          %s\n\n", r.Error)
		return
	}
	fmt.Fprintf(w, "  identities:     %s\n", list(r.Identities))
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(w, "  jingle:         %s\n", yes[r.Jingle])
	fmt.Fprintf(w, "  applications:   %s\n", list(r.Applications))
	fmt.Fprintf(w, "  transports:     %s\n", list(r.Transports))
	fmt.Fprintf(w, "  hashes:         %s\n", list(r.Hashes))
	fmt.Fprintf(w, "  related:        %s\n", list(r.Other))
	switch {
	case r.FileTransfer && len(r.AutoOffer) > 0:
		fmt.Fprintf(w, "  send files:     yes, over %s\n", strings.Join(r.AutoOffer, " then "))
	case r.FileTransfer:
		fmt.Fprintf(w, "  send files:     no common transport (jinglectl offers s5b and ibb)\n")
	default:
		fmt.Fprintf(w, "  send files:     no (needs %s and %s)\n", jingle.NS, filetransfer.NS)
	}
	if len(r.OMEMODevices) > 0 {
		ids := make([]string, len(r.OMEMODevices))
		for i, d := range r.OMEMODevices {
			ids[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(w, "  omemo devices:  %s\n", strings.Join(ids, ", "))
	}
	fmt.Fprintf(w, "  all features:   %d (--json lists them)\n\n", len(r.Features))
}
