package main

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestChooseCallee(t *testing.T) {
	bare := jid.MustParse("bob@example.org")
	phone, web, bot := jid.MustParse("bob@example.org/phone"), jid.MustParse("bob@example.org/web"), jid.MustParse("bob@example.org/bot")
	for _, tc := range []struct {
		name   string
		caps   []calleeCaps
		want   jid.JID
		status int
	}{
		{"a device with XEP-0353 rings (proposal to the bare JID)", []calleeCaps{
			{jid: web, answered: true, audio: true}, {jid: phone, answered: true, jmi: true, audio: true}}, bare, 0},
		{"no XEP-0353: directly to the first with audio calls", []calleeCaps{
			{jid: bot, answered: true}, {jid: web, answered: true, audio: true}, {jid: phone, answered: true, audio: true}}, web, 0},
		{"none online", nil, jid.JID{}, exitOffline},
		{"none answers disco", []calleeCaps{{jid: web}, {jid: phone}}, jid.JID{}, exitOffline},
		{"online, but no calls", []calleeCaps{{jid: bot, answered: true}, {jid: web}}, jid.JID{}, exitUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseCallee(bare, tc.caps)
			if tc.status != 0 {
				var ce *calleeError
				if !errors.As(err, &ce) || ce.status != tc.status || calleeStatus(err) != tc.status {
					t.Fatalf("got %v, %v; want exit %d", got, err, tc.status)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
