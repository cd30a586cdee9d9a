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
