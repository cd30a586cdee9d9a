package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCommand is the hidden command 'make man' runs: it writes a man page
// for jinglectl and one per command into DIR, from the same usage texts
// and flag sets as --help (cobra/doc renders them as roff).
const manCommand = "__man"

func runMan(args []string, e env) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return usageLine(e, manCommand, "want the output DIR")
	}
	if err := writeManPages(args[0]); err != nil {
		fmt.Fprintf(e.stderr, "jinglectl: man pages: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// writeManPages writes jinglectl.1 and jinglectl-CMD.1 into dir.
func writeManPages(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var top strings.Builder
	usage(&top)
	root := &cobra.Command{
		Use:               "jinglectl",
		Short:             "a tool for XMPP Jingle (XEP-0166) sessions",
		Long:              manText(top.String()),
		DisableAutoGenTag: true,
	}
	for _, c := range commands() {
		text, fs := commandHelp(c.name)
		use, long := splitUsage(text)
		cc := &cobra.Command{Use: use, Short: c.summary, Long: manText(long), Run: func(*cobra.Command, []string) {}}
		if fs != nil {
			cc.Flags().AddFlagSet(fs)
		}
		root.AddCommand(cc)
	}
	header := &doc.GenManHeader{Title: "JINGLECTL", Section: "1", Source: "jinglekit", Manual: "jinglectl manual"}
	return doc.GenManTree(root, header, dir)
}

// splitUsage splits a --help text into the synopsis ("send [flags]
// RECIPIENT FILE...") and the description (without the flag list, which
// the man page renders from the flag set).
func splitUsage(text string) (use, long string) {
	first, rest, _ := strings.Cut(text, "\n")
	use = strings.TrimPrefix(strings.TrimPrefix(first, "Usage: "), "jinglectl ")
	if i := strings.Index(rest, "\nFlags:\n"); i >= 0 {
		flagsEnd := strings.Index(rest[i+1:], "\n\n")
		tail := ""
		if flagsEnd >= 0 {
			tail = rest[i+1+flagsEnd:]
		}
		rest = rest[:i] + tail
	}
	return use, strings.TrimSpace(rest)
}

// manText makes a plain usage text into the markdown md2man reads:
// indented lines (examples, tables) become code blocks.
func manText(s string) string {
	var b strings.Builder
	inCode := false
	for _, l := range strings.Split(s, "\n") {
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		switch {
		case indented && !inCode:
			b.WriteString("\n")
			inCode = true
		case !indented && inCode && l != "":
			b.WriteString("\n")
			inCode = false
		}
		if indented {
			l = "    " + strings.TrimLeft(l, "\t")
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
