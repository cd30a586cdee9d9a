package main

import (
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
)

// TestDoneLineNote: the text line of a file that was not resumed because
// it is encrypted says so and why.
func TestDoneLineNote(t *testing.T) {
	e := agent.Event{Event: agent.EventDone, Direction: agent.Receive, File: "big.bin", Size: 2 << 20, Peer: "alice@example.net/s2",
		Path: "/in/big.bin", Encrypted: true, Note: filetransfer.NoteEncryptedRestart}
	line := doneLine(e)
	for _, want := range []string{"encrypted end to end", "restart from the first byte", "authenticated only by the AES-GCM tag"} {
		if !strings.Contains(line, want) {
			t.Errorf("done line %q lacks %q", line, want)
		}
	}
	e.Note = ""
	if line := doneLine(e); strings.Contains(line, "restart") {
		t.Errorf("done line without a note: %q", line)
	}
}
