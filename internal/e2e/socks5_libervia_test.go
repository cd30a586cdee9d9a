//go:build libervia

// Interoperability with Libervia 0.9, through the harness of
// ../shared/peers/libervia (Prosody on 127.0.0.1:15222, libervia backends
// for alice and bob). Start it first:
//
//	cd ../shared/peers/libervia && ./prosody-up && ./libervia-up bob && ./libervia-up alice
//	JINGLEKIT_LIBERVIA=$PWD go test -tags libervia -run Libervia -v ./internal/e2e/
//
// The test logs in as carol@localhost and uses the file-transfer
// application and IBB (for Libervia's fallback) of this module.
package e2e_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

type lvParty struct {
	m    *jingle.Manager
	j    jid.JID
	done chan filetransfer.Result
	dir  string
}

// eofMethod half-closes the stream after a given number of bytes: the
// file-transfer sender does not (yet), and Libervia waits for the end of
// the stream before it checks the file and ends the session.
type eofMethod struct {
	*socks5.Method
	after int64
}

func (m eofMethod) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t, err := m.Method.NewTransport(ctx, p)
	if err != nil {
		return nil, err
	}
	return eofTransport{t.(jingle.StreamTransport), m.after}, nil
}

type eofTransport struct {
	jingle.StreamTransport
	after int64
}

func (t eofTransport) Dial(ctx context.Context) (net.Conn, error) {
	c, err := t.StreamTransport.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return &eofConn{Conn: c, left: t.after}, nil
}

type eofConn struct {
	net.Conn
	left int64
}

func (c *eofConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.left -= int64(n)
	if err == nil && c.left <= 0 {
		err = c.Conn.(interface{ CloseWrite() error }).CloseWrite()
	}
	return n, err
}

func liberviaParty(t *testing.T, harness string, set socks5.Settings, eofAfter ...int64) *lvParty {
	t.Helper()
	pdir, err := os.ReadFile(filepath.Join(harness, "run", "prosody.dir"))
	if err != nil {
		t.Skipf("harness not running: %v", err)
	}
	set.Logger = testLogger(t).With("side", "carol")
	p := &lvParty{m: &jingle.Manager{Logger: set.Logger}, done: make(chan filetransfer.Result, 4), dir: t.TempDir()}
	h := &filetransfer.Handler{Dir: p.dir, Policy: filetransfer.AcceptAll, Logger: set.Logger,
		Done: func(r filetransfer.Result) { p.done <- r }}
	ib := &ibb.Method{Logger: set.Logger}
	p.m.RegisterApplication(h)
	if len(eofAfter) > 0 {
		p.m.RegisterTransport(eofMethod{socks5.NewMethod(set), eofAfter[0]})
	} else {
		p.m.RegisterTransport(socks5.NewMethod(set))
	}
	p.m.RegisterTransport(ib)
	caps := xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "pc"}}, Features: p.m.Features()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: jid.MustParse("carol@localhost/jinglekit"), Password: "pass",
		Server: "127.0.0.1:15222", CAFile: filepath.Join(strings.TrimSpace(string(pdir)), "certs", "ca.crt"),
		Handler: mux.New(stanza.NSClient, p.m.Handler(), ib.Handler(), xmppclient.HandleDisco(caps)),
		Caps:    caps, Logger: set.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	p.j = c.LocalAddr()
	p.m.SetStream(c.Session())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.m.Close(ctx)
	})
	return p
}

func harnessDir(t *testing.T) string {
	dir := os.Getenv("JINGLEKIT_LIBERVIA")
	if dir == "" {
		t.Skip("JINGLEKIT_LIBERVIA not set")
	}
	return dir
}

// TestS5BLiberviaReceive: libervia (alice) sends to us over S5B, with its
// candidate-used before session-accept.
func TestS5BLiberviaReceive(t *testing.T) {
	harness := harnessDir(t)
	for _, c := range []struct {
		name string
		set  socks5.Settings
	}{
		{"direct", prosodySettings()},
		// We use only its proxy: it must activate it, fails (proxy-error),
		// and falls back to IBB with transport-replace.
		{"proxy", func() socks5.Settings { s := prosodySettings(); s.NoDirect = true; return s }()},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := liberviaParty(t, harness, c.set)
			path, sum := randomFile(t, "s5b-"+c.name+".bin", 4<<20, 13)
			out, err := testproc.CombinedOutput(testproc.Command(filepath.Join(harness, "send-file"), "alice", p.j.String(), path))
			t.Logf("send-file: %s", out)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-p.done:
				if r.Err != nil {
					t.Fatalf("result %+v", r)
				}
				data, err := os.ReadFile(r.Path)
				if err != nil {
					t.Fatal(err)
				}
				got := sha256.Sum256(data)
				if hex.EncodeToString(got[:]) != sum {
					t.Fatal("received file differs")
				}
				t.Logf("received over %s", r.Transport)
			case <-time.After(60 * time.Second):
				t.Fatal("no file")
			}
		})
	}
}

// TestS5BLiberviaSend: we send to libervia (bob) over S5B.
func TestS5BLiberviaSend(t *testing.T) {
	harness := harnessDir(t)
	for _, c := range []struct {
		name string
		set  socks5.Settings
	}{
		{"direct", prosodySettings()},
		// Only our proxy: bob connects to it, we activate it.
		{"proxy", func() socks5.Settings { s := prosodySettings(); s.NoDirect = true; return s }()},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := liberviaParty(t, harness, c.set, 4<<20)
			path, sum := randomFile(t, "s5b-"+c.name+".bin", 4<<20, 13)
			recvDir := t.TempDir()
			cmd := testproc.Command(filepath.Join(harness, "receive-file"), "bob", recvDir)
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = cmd.Stdout
			proc, err := testproc.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stdout)
			var lines []string
			ready := make(chan struct{})
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				once := false
				for sc.Scan() {
					lines = append(lines, sc.Text())
					if !once && strings.Contains(sc.Text(), "ready") {
						once = true
						close(ready)
					}
				}
			}()
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
				_, _ = proc.Stop(0)
				t.Fatal("receive-file not ready")
			}
			src, err := filetransfer.FileSource(path)
			if err != nil {
				t.Fatal(err)
			}
			s := filetransfer.Sender{Transports: []string{socks5.NS, ibb.NSTransport}, HashEncoding: filetransfer.HexBase64, Logger: testLogger(t)}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := s.Send(ctx, p.m, jid.MustParse("bob@localhost/libervia"), src)
			t.Logf("results %+v", res)
			if err != nil {
				t.Fatal(err)
			}
			werr := proc.Wait()
			<-finished
			t.Logf("receive-file: %s", strings.Join(lines, "\n"))
			if werr != nil {
				t.Fatal(werr)
			}
			if !strings.Contains(strings.Join(lines, "\n"), "sha256="+sum) {
				t.Fatal("bob's file differs")
			}
		})
	}
}

// prosodySettings: loopback candidates, proxy discovery on.
func prosodySettings() socks5.Settings {
	return socks5.Settings{
		AllowLoopback:      true,
		Addresses:          []string{"127.0.0.1"},
		ListenHost:         "127.0.0.1",
		ConnectTimeout:     3 * time.Second,
		HandshakeTimeout:   3 * time.Second,
		NegotiationTimeout: 30 * time.Second,
	}
}
