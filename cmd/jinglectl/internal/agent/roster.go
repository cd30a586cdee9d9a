package agent

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// NSRoster is the roster namespace (RFC 6121).
const NSRoster = "jabber:iq:roster"

// maxRosterItems bounds the roster kept in memory.
const maxRosterItems = 100000

// rosterItem mirrors <item/> of a roster query.
type rosterItem struct {
	JID          string `xml:"jid,attr"`
	Subscription string `xml:"subscription,attr"`
	Name         string `xml:"name,attr"`
}

type rosterQuery struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Items   []rosterItem `xml:"item"`
}

// roster keeps the subscription state of the account's contacts: fetched
// at login and kept current by roster pushes.
type roster struct {
	self jid.JID

	mu    sync.Mutex
	items map[string]string // bare JID → subscription
	names map[string]string // bare JID → the name the user gave the contact
}

func newRoster() *roster { return &roster{items: map[string]string{}, names: map[string]string{}} }

// named returns the bare JIDs of the contacts named name exactly, sorted.
func (r *roster) named(name string) []jid.JID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []jid.JID
	for k, n := range r.names {
		if n == name {
			if j, err := jid.Parse(k); err == nil {
				out = append(out, j)
			}
		}
	}
	slices.SortFunc(out, func(a, b jid.JID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// subscription returns the subscription of bare ("" when not a contact).
func (r *roster) subscription(j jid.JID) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.items[j.Bare().String()]
}

// mutual reports whether j is a contact with a mutual subscription.
func (r *roster) mutual(j jid.JID) bool { return r.subscription(j) == "both" }

func (r *roster) set(items []rosterItem, replace bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if replace {
		r.items = map[string]string{}
		r.names = map[string]string{}
	}
	for _, it := range items {
		j, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		key := j.Bare().String()
		if it.Subscription == "remove" {
			delete(r.items, key)
			delete(r.names, key)
			continue
		}
		if _, ok := r.items[key]; !ok && len(r.items) >= maxRosterItems {
			continue
		}
		r.items[key] = it.Subscription
		if it.Name != "" {
			r.names[key] = it.Name
		} else {
			delete(r.names, key)
		}
	}
}

// fetch gets the whole roster.
func (r *roster) fetch(ctx context.Context, s *xmpp.Session) error {
	resp, err := s.SendIQElement(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSRoster, Local: "query"}}),
		stanza.IQ{Type: stanza.GetIQ})
	if err != nil {
		return fmt.Errorf("roster: %w", err)
	}
	defer resp.Close()
	var v struct {
		XMLName xml.Name
		From    string      `xml:"from,attr"`
		Type    string      `xml:"type,attr"`
		Query   rosterQuery `xml:"jabber:iq:roster query"`
	}
	if err := xml.NewTokenDecoder(resp).Decode(&v); err != nil {
		return fmt.Errorf("roster: %w", err)
	}
	if v.From != "" && v.From != r.self.Bare().String() {
		return fmt.Errorf("roster: answer from %q, not from the server", v.From)
	}
	if v.Type != string(stanza.ResultIQ) {
		return fmt.Errorf("roster: the server answered with an error")
	}
	r.set(v.Query.Items, true)
	return nil
}

// handler answers roster pushes (RFC 6121 §2.1.6): only from the server
// (no from, or the account's bare JID); others are ignored as the RFC
// asks. It never returns an error for bad input.
func (r *roster) handler() mux.Option {
	return mux.IQ(stanza.SetIQ, xml.Name{Space: NSRoster, Local: "query"}, mux.IQHandlerFunc(r.handlePush))
}

func (r *roster) handlePush(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if iq.From.String() != "" && !iq.From.Equal(r.self.Bare()) {
		// RFC 6121 §2.1.6: ignore pushes from anyone else (no answer is
		// what the RFC suggests; mellium then answers service-unavailable).
		_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}))
		return err
	}
	var q rosterQuery
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&q); err != nil || len(q.Items) != 1 {
		_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}))
		return err
	}
	r.set(q.Items, false)
	_, err := xmlstream.Copy(t, iq.Result(nil))
	return err
}
