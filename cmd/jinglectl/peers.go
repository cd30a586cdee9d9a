package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

const peersUsage = `Usage: jinglectl peers --local [flags]

Peers lists the link-local peers around (XEP-0174 serverless mode): each
one's name, address, port, status and what it supports (its service
discovery features, asked over a link-local stream). Peers are heard over
multicast DNS for --wait, or given with --peer HOST:PORT (then mDNS is
not used).

The output has one line per peer: NAME ADDRESS PORT STATUS FEATURES, the
features shown by their short names (jingle, file-transfer:5, s5b, ibb…);
with --json, one JSON object per peer with every feature namespace.
` + localHelp + `
Example:
  jinglectl peers --local --peer 192.0.2.7:5298
`

// peerReport is one peer as peers --json prints it.
type peerReport struct {
	Name     string   `json:"name"`
	Address  string   `json:"address,omitempty"`
	Port     int      `json:"port,omitempty"`
	Status   string   `json:"status,omitempty"`
	Message  string   `json:"message,omitempty"`
	Source   string   `json:"source"`
	Features []string `json:"features"`
	Error    string   `json:"error,omitempty"`
}

func runPeers(args []string, e env) int {
	fs := newFlagSet("peers")
	l := addLocalFlags(fs)
	wait := fs.Duration("wait", 2*time.Second, "with mDNS, listen for advertisements for `DURATION`")
	usage := func(w io.Writer) { commandUsage(w, peersUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "peers", "no arguments expected")
	}
	if !l.local {
		return fail(e, "peers", usagef("peers lists link-local peers: give --local (serverless mode)"))
	}
	o, err := l.options(e)
	if err != nil {
		return fail(e, "peers", err)
	}
	o.Logger = newLogger(e, l.level(), "", "warn")
	if !l.jsonOut {
		fmt.Fprintln(e.stderr, unauthenticatedWarning)
	}
	ctx, stop := signalContext()
	defer stop()
	conn, err := agent.ConnectLocal(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return exitCanceled
		}
		return fail(e, "peers", localConnectError(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	node := conn.Node()
	if !o.NoMulticast && *wait > 0 {
		t := time.NewTimer(*wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return exitCanceled
		}
	}
	var reports []peerReport
	for _, p := range node.Peers() {
		r := peerReport{Name: p.Name.String(), Port: p.Port, Source: p.Source.String(), Status: p.TXT.Show(), Message: p.TXT.Msg}
		if p.Addr.IsValid() {
			r.Address = p.Addr.String()
		}
		if p.Port != 0 {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := node.Disco(dctx, p.Name)
			cancel()
			if err != nil {
				r.Error = strings.TrimPrefix(err.Error(), "linklocal: ")
			} else {
				r.Features = slices.Clone(info.Features)
				slices.Sort(r.Features)
			}
		}
		if r.Features == nil {
			r.Features = []string{}
		}
		reports = append(reports, r)
	}
	if l.jsonOut {
		enc := json.NewEncoder(e.stdout)
		for _, r := range reports {
			_ = enc.Encode(r)
		}
		return exitOK
	}
	if len(reports) == 0 {
		fmt.Fprintln(e.stderr, "jinglectl: peers: nobody around")
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%-30s %-15s %5s  %-6s %s\n", "NAME", "ADDRESS", "PORT", "STATUS", "FEATURES")
	for _, r := range reports {
		feats := shortFeatures(r.Features)
		if r.Error != "" {
			feats = "? (" + safeText(r.Error) + ")"
		}
		status := r.Status
		if status == "" {
			status = "-"
		}
		fmt.Fprintf(e.stdout, "%-30s %-15s %5d  %-6s %s\n", safeText(r.Name), r.Address, r.Port, safeText(status), feats)
	}
	return exitOK
}

// shortFeatures names the Jingle features among fs: "jingle", the
// applications and transports by their short names (see disco), and the
// number of the others.
func shortFeatures(fs []string) string {
	var names []string
	others := 0
	for _, f := range fs {
		if f == "urn:xmpp:jingle:1" {
			names = append(names, "jingle")
			continue
		}
		found := false
		for _, k := range slices.Concat(knownApps, knownTransports) {
			if k.ns == f {
				names = append(names, k.name)
				found = true
				break
			}
		}
		if !found {
			others++
		}
	}
	s := strings.Join(names, " ")
	if s == "" {
		s = "no Jingle"
	}
	if others > 0 {
		s += fmt.Sprintf(" (+%d more)", others)
	}
	return s
}
