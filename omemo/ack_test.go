package omemo

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

// sendingStream is a countingStream that can send stanzas: it keeps them
// instead of sending them.
type sendingStream struct {
	*countingStream
	mu   sync.Mutex
	sent [][]byte
}

func (s *sendingStream) Send(_ context.Context, r xml.TokenReader) error {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, r); err != nil {
		return err
	}
	if err := e.Flush(); err != nil {
		return err
	}
	s.mu.Lock()
	s.sent = append(s.sent, buf.Bytes())
	s.mu.Unlock()
	return nil
}

type sentMessage struct {
	XMLName   xml.Name  `xml:"message"`
	To        string    `xml:"to,attr"`
	Type      string    `xml:"type,attr"`
	Encrypted Encrypted `xml:"eu.siacs.conversations.axolotl encrypted"`
	Store     *struct{} `xml:"urn:xmpp:hints store"`
}

// TestPreKeyAcknowledged: a pre-key message is answered with an empty
// key-transport message for the sending device alone; once the sender
// decrypts it, its keys are no longer pre-key messages. Without the
// answer they stay pre-key messages.
func TestPreKeyAcknowledged(t *testing.T) {
	srv := prosody.Get(t)
	alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
	am := alice.open(t, "omemo.json")
	bs := &sendingStream{countingStream: bob.stream}
	bm, err := Open(bob.dir+"/omemo.json", bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bm.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	aliceFull := jid.MustParse(alice.jid.String() + "/omemo")

	km, iv := make([]byte, 16), make([]byte, 12)
	for i := range 2 { // two pre-key messages before the answer
		e, err := am.Encrypt(ctx, bob.jid, km, iv)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Header.Keys) != 1 || !e.Header.Keys[0].PreKey {
			t.Fatalf("message %d: keys %+v, want one pre-key message", i, e.Header.Keys)
		}
		if i == 1 {
			if _, err := bm.Decrypt(ctx, aliceFull, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := am.Stats(); st.PreKeyMessagesSent != 2 || st.BundleFetches != 1 || st.SessionsBuilt != 1 {
		t.Fatalf("alice's stats %+v, want 2 pre-key messages, 1 bundle fetch, 1 session", st)
	}
	bs.mu.Lock()
	sent := bs.sent
	bs.mu.Unlock()
	if len(sent) != 1 {
		t.Fatalf("bob sent %d stanzas, want one key-transport message", len(sent))
	}
	var msg sentMessage
	if err := xml.Unmarshal(sent[0], &msg); err != nil {
		t.Fatalf("%v: %s", err, sent[0])
	}
	ek := msg.Encrypted
	if msg.To != aliceFull.String() || msg.Type != "chat" || msg.Store == nil || ek.Payload != nil ||
		ek.Header.SID != bm.DeviceID() || len(ek.Header.IV) != 12 ||
		len(ek.Header.Keys) != 1 || ek.Header.Keys[0].RID != am.DeviceID() || ek.Header.Keys[0].PreKey {
		t.Fatalf("key-transport message: %s", sent[0])
	}
	if st := bm.Stats(); st.AcksSent != 1 || st.PreKeyMessagesReceived != 1 || st.PreKeysUsed != 1 {
		t.Fatalf("bob's stats %+v", st)
	}

	// A payload is not key transport and changes nothing.
	withPayload := ek
	withPayload.Payload = &Payload{1}
	if err := am.ReceiveKeyTransport(ctx, bob.jid, withPayload); !errors.Is(err, ErrNotKeyTransport) {
		t.Fatalf("with a payload: %v", err)
	}
	if e, err := am.Encrypt(ctx, bob.jid, km, iv); err != nil || !e.Header.Keys[0].PreKey {
		t.Fatalf("before the answer: %+v, %v: want a pre-key message", e.Header.Keys, err)
	}
	if err := am.ReceiveKeyTransport(ctx, bob.jid, ek); err != nil {
		t.Fatal(err)
	}
	e, err := am.Encrypt(ctx, bob.jid, km, iv)
	if err != nil || e.Header.Keys[0].PreKey {
		t.Fatalf("after the answer: %+v, %v: want a plain message", e.Header.Keys, err)
	}
	if _, err := bm.Decrypt(ctx, aliceFull, e); err != nil {
		t.Fatalf("bob decrypts the plain message: %v", err)
	}
	if st := am.Stats(); st.AcksReceived != 1 || st.PreKeyMessagesSent != 3 || st.BundleFetches != 1 {
		t.Fatalf("alice's stats %+v", st)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(bs.sent) != 1 {
		t.Fatalf("bob answered a plain message: %d stanzas sent", len(bs.sent))
	}
}
