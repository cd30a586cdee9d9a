package filetransfer

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/jingle"
)

// TestTransferErrorKeepsPeerReason: when our end of the connection broke
// first and the peer's reason came after (a content-remove naming a
// limit), the message says the peer's reason; the local cause follows.
func TestTransferErrorKeepsPeerReason(t *testing.T) {
	r := &jingle.Reason{Condition: jingle.ReasonDecline, Text: "more than 2 files in one session"}
	err := newErr(ErrDeclined, "file2", r, io.ErrClosedPipe)
	msg := err.Error()
	if !strings.Contains(msg, "more than 2 files in one session") || !strings.Contains(msg, io.ErrClosedPipe.Error()) {
		t.Errorf("message %q: want the peer's reason and the local cause", msg)
	}
	if !errors.Is(err, ErrDeclined) || !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("%v does not match its kind and cause", err)
	}
	ok := newErr(ErrCanceled, "f", &jingle.Reason{Condition: jingle.ReasonSuccess}, io.ErrClosedPipe)
	if strings.Contains(ok.Error(), "success") {
		t.Errorf("message %q: a success reason explains nothing", ok.Error())
	}
}

// TestEncryptedRangeRefused: a sender refuses a receiver's range that does
// not start at the first byte of an encrypted file, with an error that
// says why; the same range on a plaintext file is applied.
func TestEncryptedRangeRefused(t *testing.T) {
	off := int64(100)
	for _, encrypted := range []bool{false, true} {
		x := &xfer{key: jingle.ContentKey{Name: "f"}, send: true, size: 1000, length: 1000, encrypted: encrypted}
		err := x.applyAcceptedRange(&Range{Offset: &off})
		if !encrypted {
			if err != nil || x.offset != 100 || x.length != 900 {
				t.Fatalf("plaintext: %v, offset %d, length %d", err, x.offset, x.length)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrSecurity) || !errors.Is(err, ErrEncryptedResume) ||
			!strings.Contains(err.Error(), "restart from the first byte") || x.offset != 0 {
			t.Fatalf("encrypted: %v, offset %d: want ErrSecurity and ErrEncryptedResume", err, x.offset)
		}
	}
	zero := int64(0)
	x := &xfer{key: jingle.ContentKey{Name: "f"}, send: true, size: 1000, length: 1000, encrypted: true}
	if err := x.applyAcceptedRange(&Range{Offset: &zero}); err != nil {
		t.Fatalf("encrypted from byte 0: %v", err)
	}
}
