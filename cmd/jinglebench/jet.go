package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jet"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/omemo"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// caseJET compares an end-to-end encrypted transfer (XEP-0391 JET with
// OMEMO 0.3, AES-128-GCM streamed) with the same transfer unencrypted.
const caseJET = "throughput/s5b-direct-jet"

// withJET gives p OMEMO (its state in the bench directory, published over
// PEP) and the JET security method, and returns the Secure hook of a
// Sender.
func withJET(ctx context.Context, p *peer, dir string, log *slog.Logger) (func(context.Context, jid.JID, string) (jingle.Element, jingle.Security, error), error) {
	om, err := omemo.Open(filepath.Join(dir, "omemo-"+p.jid.Localpart()+".json"), p.c.Session(), log)
	if err != nil {
		return nil, err
	}
	if err := om.Publish(ctx); err != nil {
		return nil, err
	}
	m := &jet.Method{Envelopes: []jet.Envelope{&omemo.Envelope{OMEMO: om}}}
	if err := p.m.RegisterSecurity(m); err != nil {
		return nil, err
	}
	return func(ctx context.Context, to jid.JID, content string) (jingle.Element, jingle.Security, error) {
		return m.Offer(ctx, to, content, omemo.NS)
	}, nil
}

// runJET measures caseJET in paired rounds: an unencrypted S5B direct
// transfer, then the same encrypted, between the same two peers (both in
// this process, writing to disk); the ratio is the median of the rounds'.
func (h *harness) runJET(ctx context.Context) {
	if !h.o.match(caseJET) {
		return
	}
	c := Case{Name: caseJET, Bytes: h.o.size, Baseline: "throughput/s5b-direct unencrypted, same peers, paired rounds",
		Process: "parent (both peers)", Note: "JET-OMEMO: AES-128-GCM while streaming, one OMEMO key exchange per session"}
	if err := h.jetThroughput(ctx, &c); err != nil {
		c.Error = err.Error()
		c.MBPerS = nil
	}
	h.add(c)
}

func (h *harness) jetThroughput(ctx context.Context, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	cfg := peerConfig{resource: "jet", s5b: socks5.Settings{NoProxyDiscovery: true}}
	alice, bob, err := loginPair(ctx, h.env, cfg, h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	defer bob.close()
	secure, err := withJET(ctx, alice, h.env.Dir, h.log)
	if err != nil {
		return fmt.Errorf("OMEMO for alice: %w", err)
	}
	if _, err := withJET(ctx, bob, h.env.Dir, h.log); err != nil {
		return fmt.Errorf("OMEMO for bob: %w", err)
	}
	// Warm-up both ways of sending: the first encrypted session makes the
	// OMEMO session (bundle fetch, X3DH).
	for _, s := range []func(context.Context, jid.JID, string) (jingle.Element, jingle.Security, error){nil, secure} {
		if _, err := sendFileWith(ctx, alice, bob, socks5.NS, h.pattern.Source("jet-warmup.bin", 1<<20), false, s); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	size := h.o.size
	for i := range h.o.rounds {
		// Alternate which goes first, so that neither always meets the
		// page cache the other left.
		var plain, enc transfer
		for j := range 2 {
			var err error
			if (i+j)%2 == 0 {
				plain, err = sendFileWith(ctx, alice, bob, socks5.NS, h.pattern.Source(fmt.Sprintf("jet-plain-%d.bin", i), size), false, nil)
			} else {
				enc, err = sendFileWith(ctx, alice, bob, socks5.NS, h.pattern.Source(fmt.Sprintf("jet-enc-%d.bin", i), size), false, secure)
			}
			if err != nil {
				return err
			}
		}
		if !enc.Sent.Encrypted {
			return fmt.Errorf("round %d: the transfer was not encrypted", i)
		}
		c.round(MBPerS(size, enc.Elapsed), MBPerS(size, plain.Elapsed))
	}
	c.finishRounds()
	return nil
}
