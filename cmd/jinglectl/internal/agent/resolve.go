package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// settle is how long Resolve keeps collecting presence after the first
// resource of a contact appeared, so that a better one is not missed.
const settle = 300 * time.Millisecond

// SupportsFileTransfer reports whether info advertises Jingle and Jingle
// File Transfer (urn:xmpp:jingle:apps:file-transfer:5, the version
// jinglekit offers).
func SupportsFileTransfer(info xmppclient.Info) bool {
	return info.HasFeature(jingle.NS) && info.HasFeature(filetransfer.NS)
}

// PeerInfo asks a full JID for its disco#info. An entity that is not
// there (service-unavailable, recipient-unavailable, item-not-found,
// remote-server-not-found) gives an error wrapping ErrRecipientOffline.
func (c *Conn) PeerInfo(ctx context.Context, full jid.JID) (xmppclient.Info, error) {
	info, err := c.disco.Info(ctx, c.client.Session(), full)
	if err != nil {
		var se stanza.Error
		if errors.As(err, &se) {
			switch se.Condition {
			case stanza.ServiceUnavailable, stanza.RecipientUnavailable, stanza.ItemNotFound, stanza.RemoteServerNotFound:
				return xmppclient.Info{}, fmt.Errorf("%w: %s does not answer (%s)", ErrRecipientOffline, full, se.Condition)
			}
		}
		return xmppclient.Info{}, err
	}
	return info, nil
}

// ContactsNamed returns the bare JIDs of the roster contacts whose name
// (the one the user gave them in the roster) is exactly name.
func (c *Conn) ContactsNamed(name string) []jid.JID { return c.roster.named(name) }

// Resolve finds the resource to send files to. A full JID is used as it
// is, once it answers service discovery and advertises Jingle file
// transfer. For a bare JID, Resolve waits up to wait for the available
// presence of its resources — which the server delivers only for contacts
// to whose presence the account is subscribed (roster subscription "to"
// or "both") — and picks the one of highest priority (then the most
// recently seen) that advertises Jingle file transfer.
//
// Errors wrap ErrRecipientOffline (no resource visible, or the full JID
// does not answer) or ErrUnsupported (online, but without Jingle file
// transfer).
func (c *Conn) Resolve(ctx context.Context, to jid.JID, wait time.Duration) (jid.JID, xmppclient.Info, error) {
	if to.Resourcepart() != "" {
		if !c.presence.isOnline(to) {
			// Let the peer reach us back even if it has no subscription.
			_ = c.client.SendPresenceTo(ctx, to)
		}
		info, err := c.PeerInfo(ctx, to)
		if err != nil {
			return jid.JID{}, info, err
		}
		if !SupportsFileTransfer(info) {
			return jid.JID{}, info, fmt.Errorf("%w: %s", ErrUnsupported, to)
		}
		return to, info, nil
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var settled <-chan time.Time
	var settleTimer *time.Timer
	defer func() {
		if settleTimer != nil {
			settleTimer.Stop()
		}
	}()
	for {
		rs, changed := c.presence.resources(to)
		if len(rs) > 0 && settled == nil {
			settleTimer = time.NewTimer(settle)
			settled = settleTimer.C
		}
		select {
		case <-ctx.Done():
			return jid.JID{}, xmppclient.Info{}, ctx.Err()
		case <-changed:
			continue
		case <-settled:
		case <-deadline.C:
		}
		rs, _ = c.presence.resources(to)
		if len(rs) == 0 {
			return jid.JID{}, xmppclient.Info{}, fmt.Errorf("%w: no available presence from %s within %s "+
				"(a bare JID needs a presence subscription to the contact: add it to the roster, or give a full JID)",
				ErrRecipientOffline, to, wait)
		}
		var errs []error
		for _, r := range rs {
			info, err := c.PeerInfo(ctx, r.jid)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if SupportsFileTransfer(info) {
				return r.jid, info, nil
			}
			errs = append(errs, fmt.Errorf("%w: %s", ErrUnsupported, r.jid))
		}
		for _, err := range errs {
			if errors.Is(err, ErrUnsupported) {
				return jid.JID{}, xmppclient.Info{}, fmt.Errorf("%w: no online resource of %s advertises it", ErrUnsupported, to)
			}
		}
		return jid.JID{}, xmppclient.Info{}, errors.Join(errs...)
	}
}

// TransportPreference returns the order in which auto offers the transports
// the peer advertises: SOCKS5 (fastest, direct or through a proxy), then
// ICE (gets through NATs, through TURN when the servers have one), then IBB
// (always works, through the XMPP server, slowest). The first is offered;
// the session falls back to the next by transport-replace when one fails.
func TransportPreference() []string { return []string{TransportS5B, TransportICE, TransportIBB} }

// ChooseTransports returns the transport namespaces to offer for mode
// (auto, ibb, s5b or ice) to a peer advertising info, in order: for auto,
// those of TransportPreference() that the peer advertises. For ICE, one
// namespace is offered: the dialect the peer advertises, webrtc-datachannel:1
// before XEP-0343 (ice.PeerNamespaces) — both dialects run the same ICE, so
// a second one would only fail again. Errors wrap ErrNoCommonTransport or
// ErrTransportNotAvailable (unknown mode).
func ChooseTransports(mode string, info xmppclient.Info) ([]string, error) {
	var want []string
	switch mode {
	case TransportAuto, "":
		want = TransportPreference()
	case TransportS5B, TransportIBB, TransportICE:
		want = []string{mode}
	default:
		return nil, fmt.Errorf("%w: unknown transport %q (want auto, ibb, s5b or ice)", ErrTransportNotAvailable, mode)
	}
	var out []string
	for _, name := range want {
		switch name {
		case TransportS5B:
			if info.HasFeature(socks5.NS) {
				out = append(out, socks5.NS)
			}
		case TransportIBB:
			if info.HasFeature(ibb.NSTransport) {
				out = append(out, ibb.NSTransport)
			}
		case TransportICE:
			if nss := ice.PeerNamespaces(info.Features); len(nss) > 0 {
				out = append(out, nss[0])
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the recipient advertises none of %v", ErrNoCommonTransport, want)
	}
	return out, nil
}

// OnlineResources waits up to wait for the presence of bare's resources
// (see Resolve) and returns them, best first.
func (c *Conn) OnlineResources(ctx context.Context, bare jid.JID, wait time.Duration) []jid.JID {
	return c.presence.onlineResources(ctx, bare, wait)
}
