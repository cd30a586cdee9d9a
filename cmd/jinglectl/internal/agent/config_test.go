package agent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	text := `# all the settings
jid = "bob@example.org/agent"
password_file = "secret"
server = "xmpp.example.org:5222"
ca_file = "/etc/ssl/ca.pem"
insecure_skip_verify = true

[transfer]
transport = "s5b"
proxy = ["proxy.example.org", "proxy2.example.org"]
no_proxy = false
no_direct = true
allow_loopback = true
ice_servers = ["stun:stun.example.org:3478", "turn:u:p@turn.example.org:3478?transport=udp"]
ice_relay_only = true
limit_rate = "1.5M"
presence_wait = "10s"
connect_timeout = "45s"
files_per_session = 8

[receive]
dir = "~/in"
accept_from = ["alice@example.org"]
max_size = 1048576

[agent]
socket = "run/agent.sock"
metrics = "127.0.0.1:9464"
concurrency = 4
max_attempts = 7
reconnect_min = "2s"
reconnect_max = "2m"
state_file = "state.json"
log_level = "debug"
log_format = "json"
shutdown_timeout = "3s"
`
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	want := Config{
		JID: "bob@example.org/agent", PasswordFile: filepath.Join(dir, "secret"), Servers: []string{"xmpp.example.org:5222"},
		CAFile: "/etc/ssl/ca.pem", InsecureSkipVerify: true,
		Transport: "s5b", Proxies: []string{"proxy.example.org", "proxy2.example.org"}, NoDirect: true, AllowLoopback: true,
		ICEServers: []string{"stun:stun.example.org:3478", "turn:u:p@turn.example.org:3478?transport=udp"}, ICERelayOnly: true,
		LimitRate: 3 << 19, PresenceWait: 10 * time.Second, ConnectTimeout: 45 * time.Second, FilesPerSession: 8,
		Dir: filepath.Join(home, "in"), AcceptFrom: []string{"alice@example.org"}, MaxSize: 1 << 20,
		Socket: filepath.Join(dir, "run/agent.sock"), Metrics: "127.0.0.1:9464", Concurrency: 4, MaxAttempts: 7,
		ReconnectMin: 2 * time.Second, ReconnectMax: 2 * time.Minute, StateFile: filepath.Join(dir, "state.json"),
		LogLevel: "debug", LogFormat: "json", ShutdownTimeout: 3 * time.Second, Path: p,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	// Every key of Keys is in the file above: the test covers them all.
	for _, k := range Keys() {
		local := k[strings.LastIndex(k, ".")+1:]
		if k != "password" && !strings.Contains(text, "\n"+local+" = ") {
			t.Errorf("key %s not covered", k)
		}
	}
}

// TestLoadServers: server may be a list, kept in order.
func TestLoadServers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(`server = ["node2.example:5222", "node1.example:5222"]`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"node2.example:5222", "node1.example:5222"}; !reflect.DeepEqual(cfg.Servers, want) {
		t.Errorf("Servers = %q, want %q", cfg.Servers, want)
	}
	if got := SplitServers(" a:1, ,b:2,"); !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Errorf("SplitServers = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		line       int
		want       string
	}{
		{"unknown", "a = 1", 0o600, 1, `unknown setting "a"`},
		{"unknown section key", "[agent]\nsockets = \"x\"", 0o600, 2, `unknown setting "agent.sockets"`},
		{"type", "insecure_skip_verify = \"yes\"", 0o600, 1, "want true or false"},
		{"transport", "[transfer]\ntransport = \"tcp\"", 0o600, 2, "want one of auto, ibb, s5b, ice"},
		{"ice server", "[transfer]\nice_servers = [\"stun:ok.example:3478\", \"turn:nopass@turn.example:3478\"]", 0o600, 2, "TURN needs user:password"},
		{"ice server scheme", "[transfer]\nice_servers = \"http://x\"", 0o600, 2, "want stun:"},
		{"ice relay only", "[transfer]\nice_relay_only = 1", 0o600, 2, "want true or false"},
		{"duration", "[agent]\nreconnect_min = \"soon\"", 0o600, 2, "invalid duration"},
		{"negative duration", "[agent]\nreconnect_min = \"-1s\"", 0o600, 2, "invalid duration"},
		{"size", "[receive]\nmax_size = \"big\"", 0o600, 2, "invalid size"},
		{"negative size", "[receive]\nmax_size = -1", 0o600, 2, "negative size"},
		{"integer", "[agent]\nconcurrency = -2", 0o600, 2, "non-negative integer"},
		{"array", "[receive]\naccept_from = true", 0o600, 2, "want an array of strings"},
		{"server", "server = [\"a.example:5222\", \"b.example\"]", 0o600, 1, `server "b.example": want host:port`},
		{"server type", "server = 5222", 0o600, 1, "want an array of strings"},
		{"syntax", "jid = bob", 0o600, 1, "strings must be quoted"},
		{"public password", "password = \"x\"", 0o644, 1, "readable by others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, []byte(tc.text), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tc.mode)
			_, err := Load(p)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Line != tc.line || ce.Path != p || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %s:%d …%s", err, p, tc.line, tc.want)
			}
		})
	}
	// A private file may hold the password.
	p := filepath.Join(dir, "private")
	os.WriteFile(p, []byte("password = \"s3cret\"\n"), 0o600)
	if c, err := Load(p); err != nil || c.Password != "s3cret" {
		t.Errorf("private password: %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("an explicit missing file must be an error")
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	t.Setenv("XDG_CONFIG_HOME", dir)
	if c, err := Load(""); err != nil || !reflect.DeepEqual(c, Config{}) {
		t.Errorf("missing default file: %+v, %v", c, err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"512", 512, true}, {"64K", 64 << 10, true}, {"64k", 64 << 10, true}, {"64KiB", 64 << 10, true},
		{"64KB", 64 << 10, true}, {"10M", 10 << 20, true}, {"1.5G", 3 << 29, true}, {"2T", 2 << 40, true}, {" 3 M ", 3 << 20, true},
		{"", 0, false}, {"K", 0, false}, {"-1", 0, false}, {"1X", 0, false}, {"abc", 0, false}, {"NaN", 0, false},
		{"99999999999T", 0, false}, {"1e400", 0, false}, {"-1.5M", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 200 << 20: "200 MiB", 5 << 30: "5.0 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{write("a", "pw\n"), "pw", true},
		{write("b", "pw\r\nsecond line\n"), "pw", true},
		{write("c", "p w "), "p w ", true},
		{write("d", ""), "", false},
		{write("e", "\nx"), "", false},
		{write("f", strings.Repeat("x", 5000)), "", false},
		{dir, "", false},
		{filepath.Join(dir, "missing"), "", false},
	} {
		got, err := ReadPasswordFile(tc.path)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ReadPasswordFile(%s) = %q, %v", tc.path, got, err)
		}
	}
}

func TestAccountJID(t *testing.T) {
	j, err := AccountJID("bob@example.org")
	if err != nil || j.Bare().String() != "bob@example.org" || !strings.HasPrefix(j.Resourcepart(), "jinglectl-") {
		t.Errorf("bare: %v, %v", j, err)
	}
	j, err = AccountJID("bob@example.org/agent")
	if err != nil || j.String() != "bob@example.org/agent" {
		t.Errorf("full: %v, %v", j, err)
	}
	for _, bad := range []string{"", "example.org", "@@", "bob@"} {
		if _, err := AccountJID(bad); err == nil {
			t.Errorf("AccountJID(%q) accepted", bad)
		}
	}
}
