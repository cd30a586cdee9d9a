package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jinglekit/jinglekit/internal/inspectmodels"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
)

// inspectFormat is what inspect prints for each stanza.
type inspectFormat int

const (
	formatBoth inspectFormat = iota // model and XML, in labelled sections
	formatXML                       // only the XML
	formatJSON                      // only the model, one JSON document per line
)

const inspectUsage = `Usage: jinglectl inspect [--xml | --json] [FILE]

Inspect reads XMPP stanzas from FILE, or from standard input if FILE is
absent or "-", and prints for each the model jinglekit decodes from it and
the XML it writes back. The input may hold several top-level elements,
comments and an XML declaration, like the XEP examples; unprefixed
elements without an xmlns declaration are in jabber:client. Elements
jinglekit has no model for are kept as they came, so the XML printed has
the same infoset as the input.

By default each stanza is printed as

	=== stanza N: <name> at line L, column C
	--- model (JSON)
	{ …indented JSON… }
	--- XML
	<…indented XML…>

followed by an empty line. The JSON shape is

	{"stanza": "iq", "ns": "jabber:client", "attrs": {…},
	 "payload": [{"type": "jingle", "name": "jingle", "ns": "…", "model": {…}},
	             {"type": "element", "name": "…", "ns": "…", "element": {…}},
	             {"type": "text", "text": "…"}]}

where "type" is the model's kind ("jingle", "error", …), "element" for an
element without a model, or "text" for character data in the stanza.

Flags:
  --xml    print only the XML, the stanzas one after another, indented
  --json   print only the models, one JSON document per line (JSON Lines)

Stanzas before a malformed one are printed; then inspect stops with the
reason on standard error ("jinglectl: inspect: line 3, column 5: …").
Exit status: 0 on success, 1 on malformed input or a read or write error,
2 on bad usage.
`

// runInspect is 'jinglectl inspect'.
func runInspect(args []string, e env) int {
	fs := newFlagSet("inspect")
	onlyXML := fs.Bool("xml", false, "print only the XML")
	onlyJSON := fs.Bool("json", false, "print only the models, one JSON document per line")
	usage := func(w io.Writer) { io.WriteString(w, inspectUsage) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if *onlyXML && *onlyJSON {
		return usageLine(e, "inspect", "--xml and --json exclude each other")
	}
	if fs.NArg() > 1 {
		return usageLine(e, "inspect", "at most one FILE")
	}
	format := formatBoth
	switch {
	case *onlyXML:
		format = formatXML
	case *onlyJSON:
		format = formatJSON
	}

	in, prefix := e.stdin, "jinglectl: inspect: "
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s%v\n", prefix, err)
			return exitFailure
		}
		defer f.Close()
		in, prefix = f, prefix+name+": "
	}
	if err := inspect(in, e.stdout, format); err != nil {
		fmt.Fprintf(e.stderr, "%s%v\n", prefix, err)
		return exitFailure
	}
	return exitOK
}

// inspect reads the stanzas in r and prints each to w in the given format.
// It returns a *stanzamodel.SyntaxError or *stanzamodel.DecodeError for
// malformed input, after printing the stanzas before it.
func inspect(r io.Reader, w io.Writer, format inspectFormat) (err error) {
	bw := bufio.NewWriter(w)
	defer func() {
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}()
	p := newRegistry().NewParser(r)
	for n := 1; ; n++ {
		s, err := p.Next()
		if err == io.EOF {
			if n == 1 {
				return errors.New("no element in input")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := printStanza(bw, n, s, format); err != nil {
			return err
		}
	}
}

func printStanza(w *bufio.Writer, n int, s *stanzamodel.Stanza, format inspectFormat) error {
	switch format {
	case formatJSON:
		b, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("stanza %d: %w", n, err)
		}
		w.Write(b)
		return w.WriteByte('\n')
	case formatXML:
		b, err := stanzamodel.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("stanza %d: %w", n, err)
		}
		w.Write(b)
		return w.WriteByte('\n')
	}
	j, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("stanza %d: %w", n, err)
	}
	x, err := stanzamodel.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("stanza %d: %w", n, err)
	}
	fmt.Fprintf(w, "=== stanza %d: <%s> at line %d, column %d\n--- model (JSON)\n%s\n--- XML\n%s\n\n", n, s.Name.Local, s.Line, s.Column, j, x)
	return nil
}

// newRegistry returns the element models inspect knows: those of
// internal/inspectmodels, where packages with their own models (file
// transfer, transports, RTP…) register them.
func newRegistry() *stanzamodel.Registry { return inspectmodels.Registry() }
