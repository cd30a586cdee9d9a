package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzControlRequest reads what a client writes to the control socket:
// no panic; a request that is accepted has a known operation and, for
// send, a recipient, 1 to MaxRequestFiles absolute paths and a known
// transport; and it reads back the same once written again.
func FuzzControlRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"status"}`, `{"op":"watch"}`, `{"op":"cancel","ids":["s1","s2"]}`,
		`{"op":"send","peer":"bob@example.org/phone","files":["/tmp/a","/tmp/b"],"transport":"auto","wait":true}`,
		`{"op":"send","peer":"@@","files":["x"]}`, `{"op":"format-disk"}`, `[1,2]`, `{"op":"send","files":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(data)
		if err != nil {
			return
		}
		if req.Op == OpSend && (len(req.Files) == 0 || len(req.Files) > MaxRequestFiles || req.Peer == "") {
			t.Fatalf("%q accepted as %+v", data, req)
		}
		for _, p := range req.Files {
			if req.Op == OpSend && !filepath.IsAbs(p) {
				t.Fatalf("%q accepted with the relative path %q", data, p)
			}
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeRequest(b)
		if err != nil || !reflect.DeepEqual(req, again) {
			t.Fatalf("%q read as %+v, written as %s, read again as %+v, %v", data, req, b, again, err)
		}
	})
}

// FuzzConfig loads a configuration file: no panic; a file that is
// refused gives a *ConfigError naming it; one that loads has checked ICE
// servers and takes the defaults.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"jid = \"bob@example.org/agent\"\npassword_file = \"secret\"\n[transfer]\ntransport = \"s5b\"\nproxy = [\"proxy.example.org\"]\nno_direct = true\nice_servers = [\"stun:stun.example.org:3478\", \"turn:u:p@turn.example.org:3478?transport=udp\"]\nlimit_rate = \"1.5M\"\npresence_wait = \"10s\"\n[receive]\ndir = \"~/in\"\naccept_from = [\"alice@example.org\"]\nmax_size = 1048576\n[agent]\nsocket = \"run/agent.sock\"\n",
		"[transfer]\nice_servers = [\"turn:nouser@x:1\"]\n",
		"jid = 3\n", "[[x]]\n", "a = \"\\u0000\"\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "config.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("%q: error %v is not a *ConfigError naming the file", data, err)
			}
			return
		}
		for _, s := range c.ICEServers {
			if _, err := ParseICEServer(s); err != nil {
				t.Fatalf("%q: loaded with the ICE server %q: %v", data, s, err)
			}
		}
		_ = c.WithDefaults().ICEConfig(nil)
	})
}
