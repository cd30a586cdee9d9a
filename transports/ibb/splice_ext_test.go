package ibb_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/jinglekit/jinglekit/transports/ibb"
)

// TestPayloadsWriteFilterElsewhere: a Method whose Payloads has a write
// filter on another stream sends references its stream does not replace.
// The sender reports that, and the receiver takes none of it for data.
func TestPayloadsWriteFilterElsewhere(t *testing.T) {
	p := ibb.NewPayloads()
	_ = p.WriteFilter(io.Discard) // not the stream the Method sends on
	_, a, b := pair(t, &ibb.Method{Payloads: p}, &ibb.Method{})
	ca, cb := connect(t, a, b)
	_, werr := ca.Write([]byte("jinglekit"))
	if cerr := ca.Close(); werr == nil && cerr == nil {
		t.Fatal("Write and Close succeeded: the data cannot have arrived")
	} else if err := errors.Join(werr, cerr); !bytes.Contains([]byte(err.Error()), []byte("write filter")) {
		t.Errorf("error %q does not say the write filter is missing", err)
	}
	got, err := io.ReadAll(cb)
	if len(got) != 0 || err == nil {
		t.Errorf("the receiver read %q, %v; want nothing and an error", got, err)
	}
}
