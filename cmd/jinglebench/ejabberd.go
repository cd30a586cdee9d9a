package main

import (
	"context"
	"errors"
	"os"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
)

// ejabberdCases are the transports whose data goes through the server, the
// cases where the server decides the figure.
var ejabberdCases = map[string]bool{"s5b-proxy65": true, "ibb-4096": true, "ibb-65535": true}

// runEjabberd repeats the throughput cases that go through the server
// against an ejabberd node, in the same run as Prosody's, under the names
// "throughput/ejabberd/CASE". Without ejabberd installed the step is
// skipped, unless JINGLEKIT_REQUIRE_EJABBERD=1 makes that a failed case.
func (h *harness) runEjabberd(ctx context.Context) {
	var cases []transportCase
	for _, tc := range transportCases() {
		if ejabberdCases[tc.name] && h.o.match("throughput/ejabberd/"+tc.name) {
			cases = append(cases, tc)
		}
	}
	if len(cases) == 0 {
		return
	}
	alicePW, bobPW := newPassword(), newPassword()
	srv, err := ejabberdtest.Start(ctx, ejabberdtest.Options{
		Users:    map[string]string{"alice": alicePW, "bob": bobPW},
		LogLevel: "warning",
		Logger:   h.log,
	})
	if err != nil {
		if errors.Is(err, ejabberdtest.ErrNotInstalled) && os.Getenv(ejabberdtest.EnvRequire) != "1" {
			h.say.Warn("bench: ejabberd cases skipped", "error", err)
			return
		}
		h.add(Case{Name: "throughput/ejabberd", Error: err.Error()})
		return
	}
	defer srv.Stop()
	// The cases read the server from the harness: point it at ejabberd for
	// the step, and back at Prosody after.
	prosodyEnv, prosodyPid := h.env, h.prosodyPid
	defer func() { h.env, h.prosodyPid = prosodyEnv, prosodyPid }()
	env := *prosodyEnv
	env.C2SAddr, env.CAFile = srv.C2SAddr, srv.CAFile
	env.Alice = Account{"alice@" + srv.Domain, alicePW}
	env.Bob = Account{"bob@" + srv.Domain, bobPW}
	h.env, h.prosodyPid = &env, srv.Pid()
	for _, tc := range cases {
		size := h.o.size
		if tc.ibb {
			size = h.o.ibbSize
		}
		c := Case{Name: "throughput/ejabberd/" + tc.name, Bytes: size, Baseline: tc.baseline,
			Process: "parent (sender); the receiver runs in a child process",
			Note:    "as throughput/" + tc.name + ", through ejabberd 23.01 instead of Prosody (server CPU: the ejabberd VM)"}
		if err := h.throughput(ctx, tc, size, &c); err != nil {
			c.Error = err.Error()
			c.MBPerS = nil
		}
		h.add(c)
	}
}
