package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// calleeError is why a call to a bare JID cannot be placed: no online
// resource (exit status 5) or none that takes Jingle audio calls (6).
type calleeError struct {
	status int
	msg    string
}

func (e *calleeError) Error() string { return e.msg }

// calleeWait bounds the disco#info query of each of the callee's resources.
const calleeWait = 10 * time.Second

// calleeCaps is what one resource of the callee advertises.
type calleeCaps struct {
	jid      jid.JID
	answered bool // it answered disco#info
	jmi      bool // XEP-0353
	audio    bool // XEP-0167 with audio
}

// chooseCallee decides where a call to the resources caps (best first)
// goes: to the bare JID, proposed with XEP-0353, when one of them
// advertises it (the proposal rings those that do); else directly to the
// first that advertises Jingle RTP audio, as Conversations does for older
// clients (StanzaJS 12.22.1 advertises no XEP-0353 and silently drops a
// <propose/>); else nowhere, with a calleeError.
func chooseCallee(bare jid.JID, caps []calleeCaps) (jid.JID, error) {
	var direct *calleeCaps
	answered := false
	for i, c := range caps {
		answered = answered || c.answered
		if c.jmi {
			return bare.Bare(), nil
		}
		if c.audio && direct == nil {
			direct = &caps[i]
		}
	}
	switch {
	case direct != nil:
		return direct.jid, nil
	case len(caps) == 0:
		return jid.JID{}, &calleeError{status: exitOffline, msg: fmt.Sprintf("%s has no online resource", bare)}
	case !answered:
		return jid.JID{}, &calleeError{status: exitOffline, msg: fmt.Sprintf("no online resource of %s answers service discovery", bare)}
	}
	return jid.JID{}, &calleeError{status: exitUnsupported, msg: fmt.Sprintf("no online resource of %s supports Jingle audio calls (XEP-0353 or XEP-0167)", bare)}
}

// subscribedTo reports whether the roster holds bare with a subscription
// to its presence ("to" or "both"): only then does the absence of its
// presence mean it is offline.
func (c *callClient) subscribedTo(ctx context.Context, bare jid.JID) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, calleeWait)
	defer cancel()
	iter := roster.Fetch(ctx, c.cl.Session())
	defer iter.Close()
	found := false
	for iter.Next() {
		it := iter.Item()
		if it.JID.Bare().Equal(bare.Bare()) && (it.Subscription == "to" || it.Subscription == "both") {
			found = true
		}
	}
	return found, iter.Err()
}

// resolveCallee returns where a call to peer goes: a full JID as it is; for
// a bare JID, what chooseCallee picks among the resources whose presence
// arrives within wait. Without a presence subscription to peer nothing can
// be known: the call is proposed to the bare JID (XEP-0353 needs none).
func (c *callClient) resolveCallee(ctx context.Context, peer jid.JID, wait time.Duration) (jid.JID, error) {
	if peer.Resourcepart() != "" {
		return peer, nil
	}
	subscribed, err := c.subscribedTo(ctx, peer)
	if err != nil {
		return jid.JID{}, fmt.Errorf("reading the roster: %w", err)
	}
	online := c.presences.Online(ctx, peer, wait)
	if err := ctx.Err(); err != nil {
		return jid.JID{}, err
	}
	if len(online) == 0 && !subscribed {
		c.log.Info("call: no presence subscription to the callee; proposing to its bare JID", "peer", peer.String())
		return peer.Bare(), nil
	}
	caps := make([]calleeCaps, 0, len(online))
	for _, r := range online {
		qctx, cancel := context.WithTimeout(ctx, calleeWait)
		info, err := c.disco.Info(qctx, c.cl.Session(), r)
		cancel()
		if err != nil {
			c.log.Info("call: disco#info of a resource of the callee", "peer", r.String(), "err", err)
			caps = append(caps, calleeCaps{jid: r})
			continue
		}
		caps = append(caps, capsOf(r, info))
	}
	return chooseCallee(peer, caps)
}

// capsOf reads what a resource's disco#info says about calls.
func capsOf(r jid.JID, info xmppclient.Info) calleeCaps {
	return calleeCaps{
		jid:      r,
		answered: true,
		jmi:      info.HasFeature(jmi.NS),
		audio:    info.HasFeature(rtp.NS) && info.HasFeature(rtp.NSAudio),
	}
}

// calleeStatus returns the exit status of a resolveCallee error.
func calleeStatus(err error) int {
	var ce *calleeError
	if errors.As(err, &ce) {
		return ce.status
	}
	return errStatus(err)
}
