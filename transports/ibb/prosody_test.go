package ibb_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// prosodySide logs a new account in to the shared Prosody with a Jingle
// manager, the test application and method.
func prosodySide(t testing.TB, name string, method *ibb.Method) (*side, jid.JID) {
	t.Helper()
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, name)
	sd := &side{m: &jingle.Manager{}, app: jingletest.NewApp(), ibb: method}
	sd.m.RegisterApplication(sd.app)
	sd.m.RegisterTransport(method)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := xmppclient.Config{
		JID: jid.MustParse(account), Password: password,
		Server: srv.C2SAddr, CAFile: srv.CAFile,
		Handler: mux.New(stanza.NSClient, sd.m.Handler(), method.Handler()),
	}
	if method.Payloads != nil {
		cfg.ReadFilter, cfg.WriteFilter = method.Payloads.Filter, method.Payloads.WriteFilter
	}
	c, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("closing %s: %v", account, err)
		}
	})
	sd.xs = c.Session()
	sd.m.SetStream(c.Session())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sd.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", account, err)
		}
	})
	return sd, c.LocalAddr()
}

// prosodySession starts a session alice → bob through Prosody and returns
// the IBB stream's two ends.
func prosodySession(t testing.TB, alice, bob *side, bobAddr jid.JID) (ca, cb io.ReadWriteCloser) {
	t.Helper()
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, bobAddr, jingle.Offer{
		Name: "file", Description: jingletest.Desc("file"), Transports: []string{ibb.NSTransport},
	})
	if err != nil {
		t.Fatal(err)
	}
	var bs *jingle.Session
	select {
	case bs = <-bob.app.Sessions:
	case <-ctx.Done():
		t.Fatal("no incoming session")
	}
	waitEvent(t, bs, jingle.ActionSessionInitiate)
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	type res struct {
		c   io.ReadWriteCloser
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := bs.Conn(ctx, "file"); ch <- res{c, err} }()
	ca, err = as.Conn(ctx, "file")
	if err != nil {
		t.Fatalf("alice's conn: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("bob's conn: %v", r.err)
	}
	return ca, r.c
}

// TestProsodyTransferPayloads: the receiver's stream reader takes the
// payloads out of the XML path, the sender's writer puts them in past the
// XML encoder (ibb.Payloads); every byte still arrives, for both block
// sizes, with Payloads on either side or both.
func TestProsodyTransferPayloads(t *testing.T) {
	for _, block := range []int{4096, 65535} {
		for _, sides := range []string{"both", "sender", "receiver"} {
			t.Run(fmt.Sprintf("%d/%s", block, sides), func(t *testing.T) {
				var send, recv *ibb.Payloads
				if sides != "receiver" {
					send = ibb.NewPayloads()
				}
				if sides != "sender" {
					recv = ibb.NewPayloads()
				}
				alice, _ := prosodySide(t, "alice", &ibb.Method{BlockSize: block, Payloads: send})
				bob, bobAddr := prosodySide(t, "bob", &ibb.Method{Payloads: recv})
				ca, cb := prosodySession(t, alice, bob, bobAddr)
				const size = 4 << 20
				transfer(t, ca, cb, randomBytes(t, size))
				if err := cb.Close(); err != nil {
					t.Fatal(err)
				}
				if n := ibb.PayloadsSpliced(recv); recv != nil && n < size/uint64(block) {
					t.Errorf("%d payloads taken out of the stream, want at least %d", n, size/block)
				}
				if n := ibb.PayloadsPutIn(send); send != nil && n < size/uint64(block) {
					t.Errorf("%d payloads put in past the encoder, want at least %d", n, size/block)
				}
			})
		}
	}
}

// TestProsodyTransfer sends 1 MiB and 32 MiB from alice to bob through a
// real Prosody over IBB, with the default settings, and checks them
// byte for byte (SHA-256).
func TestProsodyTransfer(t *testing.T) {
	for _, size := range []int{1 << 20, 32 << 20} {
		t.Run(fmt.Sprintf("%d MiB", size>>20), func(t *testing.T) {
			if testing.Short() && size > 1<<20 {
				t.Skip("large")
			}
			alice, _ := prosodySide(t, "alice", &ibb.Method{})
			bob, bobAddr := prosodySide(t, "bob", &ibb.Method{})
			ca, cb := prosodySession(t, alice, bob, bobAddr)
			transfer(t, ca, cb, randomBytes(t, size))
			if err := cb.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkProsodyIBB measures the throughput of one IBB stream through
// Prosody (TLS on loopback) for the XEP's recommended and the largest
// block size, with 1, 4 and 16 IQs in flight.
func BenchmarkProsodyIBB(b *testing.B) {
	for _, block := range []int{4096, 65535} {
		for _, window := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("block=%d/window=%d", block, window), func(b *testing.B) {
				alice, _ := prosodySide(b, "alice", &ibb.Method{BlockSize: block, Window: window})
				bob, bobAddr := prosodySide(b, "bob", &ibb.Method{})
				ca, cb := prosodySession(b, alice, bob, bobAddr)
				benchStream(b, ca, cb)
			})
		}
	}
}

// TestProsodyHostileDataPayloads: <data/> that a peer crafts reaches a
// receiver whose stream reader takes payloads out (ibb.Payloads) through
// a real server, which re-serializes it; each gets the answer it gets on
// the XML path, and good ones deliver their bytes.
func TestProsodyHostileDataPayloads(t *testing.T) {
	for _, tc := range []struct {
		name, seq, text string
		want            stanza.Condition // "" for a result
		read            string
	}{
		{"base64", "0", "QUJD", "", "ABC"},
		{"white space", "0", "QU JD\n\tRA==", "", "ABCD"},
		{"not base64", "0", "QU!D", stanza.BadRequest, ""},
		{"markup character", "0", "QU&amp;D", stanza.BadRequest, ""},
		{"padding inside", "0", "QQ==QUJD", stanza.BadRequest, ""},
		{"non-zero padding bits", "0", "QR==", stanza.BadRequest, ""},
		{"wrong seq", "1", "QUJD", stanza.UnexpectedRequest, ""},
		{"larger than the block", "0", base64.StdEncoding.EncodeToString(make([]byte, 4097)), stanza.BadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice, _ := prosodySide(t, "alice", &ibb.Method{BlockSize: 4096})
			p := ibb.NewPayloads()
			bob, bobAddr := prosodySide(t, "bob", &ibb.Method{Payloads: p})
			ca, cb := prosodySession(t, alice, bob, bobAddr)
			sid := ca.(*ibb.Conn).SID()
			var el jingle.Element
			payload := `<data xmlns='` + ibb.NS + `' sid='` + sid + `' seq='` + tc.seq + `'>` + tc.text + `</data>`
			if err := xml.Unmarshal([]byte(payload), &el); err != nil {
				t.Fatal(err)
			}
			resp, err := alice.xs.SendIQElement(tctx(t), el.TokenReader(), stanza.IQ{To: bobAddr, Type: stanza.SetIQ})
			if err != nil {
				t.Fatal(err)
			}
			var r rawResult
			err = xml.NewTokenDecoder(resp).Decode(&r)
			resp.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := stanza.Condition("")
			if r.Err != nil {
				got = r.Err.Condition
			}
			if r.Type == "" || got != tc.want {
				t.Fatalf("answer %q %q, want %q", r.Type, got, tc.want)
			}
			if tc.read != "" {
				if b := readN(t, cb, len(tc.read)); string(b) != tc.read {
					t.Errorf("read %q, want %q", b, tc.read)
				}
				if ibb.PayloadsSpliced(p) == 0 {
					t.Errorf("the payload was not taken out of the stream")
				}
			}
		})
	}
}
