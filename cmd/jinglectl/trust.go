package main

import (
	"encoding/json"
	"fmt"
	"io"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/omemo"
)

const trustUsage = `Usage: jinglectl trust list [flags] [PEER]
       jinglectl trust add [flags] PEER FINGERPRINT
       jinglectl trust remove [flags] PEER FINGERPRINT

Trust manages the OMEMO devices that end-to-end encrypted transfers
(XEP-0391 JET with OMEMO 0.3) are encrypted for and accepted from. It reads
and changes the OMEMO state of your account (--jid) without logging in; a
running agent picks the change up the next time it uses the state.

Trust is "blind trust before verification": the devices of a contact are
trusted without a check until you verify or remove one of them; from then
on a new device of that contact is undecided until you add it. A device
whose identity key changed is never used: list shows the new fingerprint,
add accepts it.

Fingerprints are written as Conversations shows them (eight groups of
eight hex digits); spaces and case do not matter.

  list     the known devices (of PEER, or of everyone): fingerprint and trust
  add      verify the device of PEER with this fingerprint
  remove   distrust it: no key is encrypted for it or accepted from it

Example:
  jinglectl trust add --jid alice@example.org bob@example.org "3f2a9c1e 0b7d…"
`

type trustEntry struct {
	JID         string `json:"jid"`
	Device      uint32 `json:"device"`
	Fingerprint string `json:"fingerprint"`
	Trust       string `json:"trust"`
	// Changed is the fingerprint of a new identity key the device
	// announced, not used until added.
	Changed string `json:"changed,omitempty"`
}

func runTrust(args []string, e env) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(e.stdout, trustUsage)
		return exitOK
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "add" && args[0] != "remove") {
		return usageLine(e, "trust", "want list, add or remove first")
	}
	op := args[0]
	fs := newFlagSet("trust")
	acct := addAccountFlags(fs)
	jsonOut := fs.Bool("json", false, "list: one JSON object per device")
	usage := func(w io.Writer) { commandUsage(w, trustUsage, fs, false) }
	if status, ok := parseFlags(fs, args[1:], e, usage); !ok {
		return status
	}
	want := map[string]int{"list": 0, "add": 2, "remove": 2}[op]
	if fs.NArg() != want && !(op == "list" && fs.NArg() == 1) {
		return usageLine(e, "trust", map[string]string{"list": "list takes at most one PEER", "add": "add takes PEER and FINGERPRINT", "remove": "remove takes PEER and FINGERPRINT"}[op])
	}
	cfg, err := loadConfig(e, acct, nil)
	if err != nil {
		return fail(e, "trust", err)
	}
	account, err := agent.AccountJID(cfg.JID)
	if err != nil {
		return fail(e, "trust", usagef("%v (give --jid)", err))
	}
	path := cfg.OMEMOStateFile
	if path == "" {
		path = agent.DefaultOMEMOStateFile(cfg, account)
	}
	m, err := omemo.OpenOffline(path, account)
	if err != nil {
		return fail(e, "trust", err)
	}
	peer := ""
	if fs.NArg() > 0 {
		p, err := jid.Parse(fs.Arg(0))
		if err != nil {
			return fail(e, "trust", usagef("invalid JID %q", fs.Arg(0)))
		}
		peer = p.Bare().String()
	}
	switch op {
	case "list":
		for _, d := range m.Devices(peer) {
			en := trustEntry{JID: d.JID, Device: d.ID, Fingerprint: d.Fingerprint(), Trust: string(d.Trust)}
			if len(d.Changed) > 0 {
				en.Changed = omemo.Fingerprint(d.Changed)
			}
			if *jsonOut {
				b, _ := json.Marshal(en)
				fmt.Fprintf(e.stdout, "%s\n", b)
				continue
			}
			fmt.Fprintf(e.stdout, "%s  device %d  %s  %s\n", safeText(en.JID), en.Device, en.Fingerprint, en.Trust)
			if en.Changed != "" {
				fmt.Fprintf(e.stdout, "    identity key CHANGED to %s (not used; trust add to accept)\n", en.Changed)
			}
		}
		return exitOK
	case "add":
		d, err := m.Verify(peer, fs.Arg(1))
		if err != nil {
			return fail(e, "trust", err)
		}
		fmt.Fprintf(e.stdout, "verified device %d of %s (%s)\n", d.ID, safeText(d.JID), d.Fingerprint())
	case "remove":
		d, err := m.Distrust(peer, fs.Arg(1))
		if err != nil {
			return fail(e, "trust", err)
		}
		fmt.Fprintf(e.stdout, "distrusted device %d of %s (%s)\n", d.ID, safeText(d.JID), d.Fingerprint())
	}
	return exitOK
}
