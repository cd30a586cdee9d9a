package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// TestNewUser is issue 16's table, a row per thing a new user tried (as
// one would with scp, rsync, croc or magic-wormhole), against a private
// Prosody. Rows covered by their own tests say where.
//
//   - answer --echo --record: TestCallAnswerEcho (bob echoes and records);
//   - the progress bar at 80 and 200 columns: TestBarWidthOnPTY;
//   - version with the commit, make man, make dist, SHA256SUMS:
//     TestMakeDist; every address tried (SRV): xmppclient TestSRVEveryAddress.
func TestNewUser(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	acct := func(a account, extra ...string) []string { return append(c.accountArgs(a, ""), extra...) }
	file := randomFile(t, t.TempDir(), "f.bin", 40000)

	// bob receives from alice throughout, into in.
	in := t.TempDir()
	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "r"), "--dir", in, "--accept-from", alice.jid, "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "the receiver", func() bool { return strings.Contains(recv.stderr.String(), "waiting for files") })
	bobFull := bob.jid + "/r"

	t.Run("flags after the arguments", func(t *testing.T) {
		r := c.run(60*time.Second, alice, append([]string{"send", bobFull, file}, acct(alice, "--allow-loopback", "--json")...)...)
		if r.code != 0 || !strings.Contains(r.stdout, `"event":"done"`) {
			t.Fatalf("send RECIPIENT FILE --json: %s", r)
		}
		_, errOut, code := runIn("disco", "a@example.org", "b@example.org", "--json")
		if code != exitUsage || errOut != "jinglectl: disco: want one JID; see `jinglectl disco --help`\n" {
			t.Errorf("disco JID JID --json: %d %q", code, errOut)
		}
		_, errOut, code = runIn("send", "a@example.org", "f", "--bogus")
		if code != exitUsage || errOut != "jinglectl: send: unknown flag: --bogus; see `jinglectl send --help`\n" {
			t.Errorf("send … --bogus: %d %q", code, errOut)
		}
	})

	t.Run("--version, -v, help CMD, help --help", func(t *testing.T) {
		for _, args := range [][]string{{"--version"}, {"-v"}, {"-V"}, {"version"}} {
			out, errOut, code := runIn(args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "jinglectl ") || !strings.Contains(out, "commit ") {
				t.Errorf("%v: %d %q %q", args, code, out, errOut)
			}
		}
		for args, want := range map[string]string{"help --help": "Usage: jinglectl help", "help send": "Usage: jinglectl send", "help call": "Usage: jinglectl call"} {
			out, errOut, code := runIn(strings.Fields(args)...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, want) {
				t.Errorf("%s: %d %q %q", args, code, truncate(out, 60), errOut)
			}
		}
	})

	t.Run("a server without TLS", func(t *testing.T) {
		plain, err := prosodytest.Start(t.Context(), prosodytest.Options{
			GlobalConfig: "modules_disabled = { \"tls\" }\nc2s_require_encryption = false\n",
			Users:        map[string]string{"alice": "secret"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = plain.Stop() })
		r := c.run(30*time.Second, account{password: "secret"}, "disco", "--jid", "alice@localhost", "--server", plain.C2SAddr, "bob@localhost")
		if r.code != exitConnect {
			t.Fatalf("want exit %d: %s", exitConnect, r)
		}
		oneLineError(t, r, "disco", "the server at "+plain.C2SAddr+" offers no TLS")
		if strings.Contains(r.stderr, "--ca-file") {
			t.Errorf("the --ca-file hint is wrong here: %s", r.stderr)
		}
	})

	t.Run("the proxy's port as the server", func(t *testing.T) {
		r := c.run(30*time.Second, alice, "disco", "--jid", alice.jid, "--server", srv.ProxyAddr, "--ca-file", srv.CAFile, bobFull)
		if r.code != exitConnect {
			t.Fatalf("want exit %d: %s", exitConnect, r)
		}
		oneLineError(t, r, "disco", srv.ProxyAddr+" is not an XMPP server")
	})

	t.Run("no --server: every address tried", func(t *testing.T) {
		r := c.run(30*time.Second, account{password: "x"}, "disco", "--jid", "alice@jinglekit-nowhere.invalid", "bob@example.org")
		if r.code != exitConnect {
			t.Fatalf("want exit %d: %s", exitConnect, r)
		}
		oneLineError(t, r, "disco", "2 addresses tried: jinglekit-nowhere.invalid:5222: ")
		if !strings.Contains(r.stderr, "jinglekit-nowhere.invalid:5223 (direct TLS): ") {
			t.Errorf("the second address is not named: %s", r.stderr)
		}
	})

	t.Run("receive directory not writable", func(t *testing.T) {
		dir := "/proc" // not writable, even by root
		if os.Getuid() != 0 {
			dir = t.TempDir()
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		r := c.run(30*time.Second, bob, append([]string{"receive"}, acct(bob, "--dir", dir)...)...)
		if r.code != exitUsage || time.Since(start) > 10*time.Second {
			t.Fatalf("want exit %d at once, got after %s: %s", exitUsage, time.Since(start), r)
		}
		oneLineError(t, r, "receive", "directory "+dir+" is not writable")
	})

	t.Run("a sender declined by policy", func(t *testing.T) {
		mallory := newAccount(t, srv, "mallory")
		r := c.run(60*time.Second, mallory, append([]string{"send"}, acct(mallory, "--allow-loopback", bobFull, file)...)...)
		if r.code != exitDeclined {
			t.Fatalf("want exit %d: %s", exitDeclined, r)
		}
		want := regexp.MustCompile(`jinglectl: receive: f\.bin from ` + regexp.QuoteMeta(mallory.jid) + `/\S+: declined: sender not allowed \(allowed: \[` + regexp.QuoteMeta(alice.jid) + `\]\)`)
		waitFor(t, 10*time.Second, "the receiver's line about mallory", func() bool { return want.MatchString(recv.stderr.String()) })
	})

	t.Run("--timeout is a stall limit, --deadline the total", func(t *testing.T) {
		slow := randomFile(t, t.TempDir(), "slow.bin", 500<<10)
		// 500 KiB at 125 KiB/s: about 4 s, moving all along.
		r := c.run(60*time.Second, alice, append([]string{"send"}, acct(alice, "--allow-loopback", "--transport", "s5b", "--limit-rate", "125K", "--timeout", "2s", bobFull, slow)...)...)
		if r.code != 0 {
			t.Fatalf("a slow but moving transfer with --timeout 2s: %s", r)
		}
		slow2 := randomFile(t, t.TempDir(), "slow2.bin", 500<<10)
		r = c.run(60*time.Second, alice, append([]string{"send"}, acct(alice, "--allow-loopback", "--transport", "s5b", "--limit-rate", "125K", "--deadline", "2s", bobFull, slow2)...)...)
		if r.code != exitTimeout {
			t.Fatalf("--deadline 2s: want exit %d: %s", exitTimeout, r)
		}
	})

	t.Run("Ctrl-C, then the same command resumes", func(t *testing.T) {
		big := randomFile(t, t.TempDir(), "resume.bin", 600<<10)
		args := append([]string{"send"}, acct(alice, "--allow-loopback", "--transport", "s5b", "--limit-rate", "100K", bobFull, big)...)
		bg := c.start(alice, args...)
		waitFor(t, 30*time.Second, "the receiver to start writing", func() bool {
			fi, err := os.Stat(filepath.Join(in, "resume.bin.part"))
			return err == nil && fi.Size() > 100<<10
		})
		if err := bg.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		r := bg.wait(t, 30*time.Second)
		if r.code != exitCanceled || !strings.Contains(r.stderr, "run the same command again to resume") {
			t.Fatalf("interrupted send: want exit %d and the resume hint: %s", exitCanceled, r)
		}
		r = c.run(60*time.Second, alice, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "resumed at ") {
			t.Fatalf("the same command again: %s", r)
		}
		sameContent(t, big, filepath.Join(in, "resume.bin"))
	})

	t.Run("call with nothing online", func(t *testing.T) {
		carol := newAccount(t, srv, "carol")
		subscribe(t, srv, alice, carol)
		start := time.Now()
		r := c.run(90*time.Second, alice, append([]string{"call"}, acct(alice, "--allow-loopback", carol.jid)...)...)
		if (r.code != exitOffline && r.code != exitUnsupported) || time.Since(start) > 30*time.Second {
			t.Fatalf("want exit 5 or 6 at once, got after %s: %s", time.Since(start), r)
		}
	})

	t.Run("metrics port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		r := c.run(30*time.Second, alice, append([]string{"agent"}, acct(alice, "--socket", filepath.Join(shortTempDir(t), "a.sock"), "--metrics", l.Addr().String())...)...)
		if r.code == 0 || strings.Contains(r.stderr, "cannot log in") || !strings.Contains(r.stderr, "cannot serve metrics on "+l.Addr().String()) {
			t.Fatalf("agent with its metrics port in use: %s", r)
		}
	})

	t.Run("JIDs in the logs, -v", func(t *testing.T) {
		r := c.run(60*time.Second, alice, append([]string{"send", "-vv"}, acct(alice, "--allow-loopback", bobFull, file)...)...)
		if r.code != 0 {
			t.Fatal(r)
		}
		if !strings.Contains(r.stderr, `"level":"DEBUG"`) || !strings.Contains(r.stderr, `"jid":"`+alice.jid) {
			t.Errorf("-vv: no debug log with the JID as a string:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, `":{}`) {
			t.Errorf("a value logged as {}:\n%s", r.stderr)
		}
	})

	t.Run("-q", func(t *testing.T) {
		r := c.run(60*time.Second, alice, append([]string{"send", "-q"}, acct(alice, "--allow-loopback", bobFull, file)...)...)
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("send -q printed something: %s", r)
		}
	})

	t.Run("- and --output -", func(t *testing.T) {
		out := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "o"), "--output", "-", "--accept-from", alice.jid, "--allow-loopback")...)...)
		waitFor(t, 20*time.Second, "bob/o", func() bool { return strings.Contains(out.stderr.String(), "waiting for files") })
		data := bytes.Repeat([]byte("from a pipe\n"), 5000)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := c.command(ctx, alice, append([]string{"send"}, acct(alice, "--allow-loopback", bob.jid+"/o", "-", "--name", "piped.txt")...)...)
		cmd.Stdin = bytes.NewReader(data)
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := testproc.Run(cmd); err != nil {
			t.Fatalf("send -: %v\n%s%s", err, so.String(), se.String())
		}
		if !strings.Contains(so.String(), "sent piped.txt") {
			t.Errorf("send - --name piped.txt: %q", so.String())
		}
		r := out.wait(t, 30*time.Second)
		if r.code != 0 || r.stdout != string(data) {
			t.Fatalf("receive --output -: exit %d, %d bytes on stdout (want %d)\n%s", r.code, len(r.stdout), len(data), r.stderr)
		}
	})

	t.Run("a directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "album")
		if err := os.MkdirAll(filepath.Join(dir, "2024"), 0o755); err != nil {
			t.Fatal(err)
		}
		a := randomFile(t, dir, "cover.jpg", 3000)
		b := randomFile(t, filepath.Join(dir, "2024"), "beach.jpg", 5000)
		if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
			t.Fatal(err)
		}
		r := c.run(60*time.Second, alice, append([]string{"send"}, acct(alice, "--allow-loopback", bobFull, dir)...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "sent album/2024/beach.jpg") || !strings.Contains(r.stderr, "skipping") {
			t.Fatalf("send DIR: %s", r)
		}
		// bob keeps flat names: nothing outside in, no link followed.
		sameContent(t, a, filepath.Join(in, "cover.jpg"))
		sameContent(t, b, filepath.Join(in, "beach.jpg"))
		if _, err := os.Stat(filepath.Join(in, "passwd")); err == nil {
			t.Error("the symbolic link was sent")
		}
	})

	t.Run("a roster name", func(t *testing.T) {
		setRosterNames(t, srv, alice, map[string]string{bob.jid: "Bob"})
		r := c.run(60*time.Second, alice, append([]string{"send"}, acct(alice, "--allow-loopback", "Bob", file)...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "to "+bob.jid+"/") {
			t.Fatalf("send Bob FILE: %s", r)
		}
		dave, erin := newAccount(t, srv, "dave"), newAccount(t, srv, "erin")
		setRosterNames(t, srv, alice, map[string]string{dave.jid: "Twin", erin.jid: "Twin"})
		r = c.run(60*time.Second, alice, append([]string{"send"}, acct(alice, "Twin", file)...)...)
		if r.code != exitUsage {
			t.Fatalf("an ambiguous name: want exit %d: %s", exitUsage, r)
		}
		oneLineError(t, r, "send", `the roster name "Twin" is ambiguous: `)
		if !strings.Contains(r.stderr, dave.jid) || !strings.Contains(r.stderr, erin.jid) {
			t.Errorf("the matches are not listed: %s", r.stderr)
		}
		start := time.Now()
		r = c.run(60*time.Second, alice, append([]string{"send"}, acct(alice, "Nobody", file)...)...)
		if r.code != exitUsage || time.Since(start) > 20*time.Second {
			t.Fatalf("an unknown name: want exit %d at once: %s", exitUsage, r)
		}
		oneLineError(t, r, "send", "neither a JID")
	})

	t.Run("docs list every command", func(t *testing.T) {
		doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "jinglectl.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range commandNames() {
			if !strings.Contains(string(doc), "| `"+cmd+"` |") {
				t.Errorf("docs/jinglectl.md's command table lacks %s", cmd)
			}
		}
	})

	t.Run("a container recipe", func(t *testing.T) {
		df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
		if err != nil || !strings.Contains(string(df), `CMD ["agent"`) || !strings.Contains(string(df), "CGO_ENABLED=0") {
			t.Fatalf("Dockerfile: %v\n%s", err, df)
		}
		if path, err := exec.LookPath("docker"); err == nil {
			t.Logf("docker at %s: the image is not built by this test", path)
		}
	})
}

// setRosterNames gives contacts of a a name in a's roster.
func setRosterNames(t *testing.T, srv *prosodytest.Server, a account, names map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cl, err := xmppclient.Dial(ctx, xmppclient.Config{JID: jid.MustParse(a.jid), Password: a.password, Server: srv.C2SAddr, CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for j, name := range names {
		if err := roster.Set(ctx, cl.Session(), roster.Item{JID: jid.MustParse(j), Name: name}); err != nil {
			t.Fatalf("roster set %s=%s: %v", j, name, err)
		}
	}
}
