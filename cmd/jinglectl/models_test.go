package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
)

// TestInspectKnowsNestedModels checks that inspect decodes the file-transfer
// description, the IBB and SOCKS5 transports and the checksum inside
// <jingle/> into their typed models, and still writes the XML back intact.
func TestInspectKnowsNestedModels(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // "path kind" pairs
	}{
		{"file offer over s5b", `<iq xmlns='jabber:client' type='set' id='a'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s' initiator='a@x/r'>
			<content creator='initiator' name='f'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>a.txt</name><size>3</size>
			<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=</hash></file></description>
			<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t' mode='tcp'><candidate cid='c' host='192.0.2.1' jid='a@x/r' port='1080' priority='8257536' type='direct'/></transport>
			</content></jingle></iq>`,
			[]string{"contents[0].description file-description", "contents[0].transport s5b-transport"}},
		{"transport-replace to ibb", `<iq xmlns='jabber:client' type='set' id='b'><jingle xmlns='urn:xmpp:jingle:1' action='transport-replace' sid='s'>
			<content creator='initiator' name='f'><transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='i'/></content></jingle></iq>`,
			[]string{"contents[0].transport ibb-transport"}},
		{"checksum", `<iq xmlns='jabber:client' type='set' id='c'><jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>
			<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='f'><file>
			<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=</hash></file></checksum></jingle></iq>`,
			[]string{"info[0] file-checksum"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := newRegistry().Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(ss[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				path, kind, _ := strings.Cut(w, " ")
				needle := `{"path":"` + path + `","type":"` + kind
				if !bytes.Contains(js, []byte(needle)) {
					t.Errorf("JSON lacks %s: %s", needle, js)
				}
			}
			var out bytes.Buffer
			if code := inspectRun(t, tc.in, &out); code != 0 {
				t.Fatalf("inspect --xml exited %d", code)
			}
			if ok, diff := xmltest.Equal([]byte(tc.in), out.Bytes()); !ok {
				t.Fatal(diff)
			}
		})
	}
}

// inspectRun runs inspect --xml on in.
func inspectRun(t *testing.T, in string, out *bytes.Buffer) int {
	t.Helper()
	if err := inspect(strings.NewReader(in), out, formatXML); err != nil {
		t.Log(err)
		return 1
	}
	return 0
}
