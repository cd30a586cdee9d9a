package main

import (
	"os"

	"golang.org/x/term"
)

// isTerminalFile reports whether f is a terminal.
func isTerminalFile(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// terminalWidth returns the width of the terminal f, or 80.
func terminalWidth(f *os.File) int {
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil || w < 20 {
		return 80
	}
	return w
}
