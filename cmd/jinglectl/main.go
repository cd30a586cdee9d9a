// Command jinglectl is a tool for XMPP Jingle (XEP-0166) sessions.
//
// Usage:
//
//	jinglectl <command> [flags] [arguments]
//
// The commands are:
//
//	send        send files to a contact
//	receive     wait for files and receive them
//	call        place a voice or video call
//	answer      answer voice and video calls
//	agent       run the headless transfer agent
//	status      show the agent's transfers
//	cancel      cancel transfers of the agent
//	peers       list the link-local peers around (serverless mode, --local)
//	disco       show the Jingle applications and transports a peer advertises
//	inspect     parse stanzas and print their model and XML
//	completion  print a shell completion script
//	version     print the version of jinglectl
//	help        print the usage of jinglectl or of a command
//
// Each command takes -h (or --help). Flags may be written with one dash or
// two. The exit status is 0 on success, 1 when the command fails, 2 on bad
// usage; the commands that transfer files have more (see
// docs/jinglectl.md).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// env is what a command runs with: its standard streams and environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// lookupEnv reads an environment variable; nil means os.Getenv.
	lookupEnv func(string) string
	// onHelp, when set, is given the flags of a command asked for its
	// --help (completion and man pages read them).
	onHelp func(fs *pflag.FlagSet)
}

// getenv returns the environment variable key.
func (e env) getenv(key string) string {
	if e.lookupEnv != nil {
		return e.lookupEnv(key)
	}
	return os.Getenv(key)
}

// isTerminal reports whether w is a terminal.
func (e env) isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminalFile(f)
}

// command is one subcommand of jinglectl.
type command struct {
	name    string
	summary string
	// run runs the command with the arguments after its name and returns
	// the exit status.
	run func(args []string, e env) int
}

// commands returns the subcommands, in the order usage lists them. Add new
// ones here.
func commands() []command {
	return []command{
		{"send", "send files to a contact", runSend},
		{"receive", "wait for files and receive them", runReceive},
		{"call", "place a voice or video call", runCall},
		{"answer", "answer voice and video calls", runAnswer},
		{"agent", "run the headless transfer agent", runAgent},
		{"status", "show the agent's transfers", runStatus},
		{"cancel", "cancel transfers of the agent", runCancel},
		{"peers", "list the link-local peers around (serverless mode, --local)", runPeers},
		{"disco", "show the Jingle applications and transports a peer advertises", runDisco},
		{"trust", "list, verify or distrust the OMEMO devices of end-to-end encryption", runTrust},
		{"inspect", "parse stanzas and print their model and XML", runInspect},
		{"completion", "print a shell completion script (bash, zsh, fish)", runCompletion},
		{"version", "print the version of jinglectl", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

// run runs jinglectl with args (without the program name) and returns the
// exit status. Flags may come before the command's name: they are handed
// to the command ("jinglectl -v send …" is "jinglectl send -v …").
func run(args []string, e env) int {
	var lead []string
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-"; i++ {
		switch args[i] {
		case "--version", "-version", "-V":
			return runVersion(nil, e)
		case "-h", "-help", "--help":
			usage(e.stdout)
			return exitOK
		}
		if args[i] == "--" {
			i++
			break
		}
		lead = append(lead, args[i])
		// A flag's value ("--config FILE send …"): the command is the
		// next argument that names one.
		if !strings.Contains(args[i], "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && !isCommand(args[i+1]) {
			i++
			lead = append(lead, args[i])
		}
	}
	if i >= len(args) {
		if len(lead) == 1 && lead[0] == "-v" {
			// "jinglectl -v" alone, as many tools take it: the version.
			return runVersion(nil, e)
		}
		if len(lead) > 0 {
			fmt.Fprintf(e.stderr, "jinglectl: %s: no command given; see `jinglectl --help`\n", lead[0])
			return exitUsage
		}
		usage(e.stderr)
		return exitUsage
	}
	name, rest := args[i], append(lead, args[i+1:]...)
	switch name {
	case "help":
		return runHelp(rest, e)
	case manCommand:
		return runMan(rest, e)
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(rest, e)
		}
	}
	fmt.Fprintf(e.stderr, "jinglectl: unknown command %q; see `jinglectl --help`\n", name)
	return exitUsage
}

// isCommand reports whether name is a command of jinglectl.
func isCommand(name string) bool {
	if name == "help" {
		return true
	}
	for _, c := range commands() {
		if c.name == name {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("jinglectl is a tool for XMPP Jingle (XEP-0166) sessions.\n\n")
	b.WriteString("Usage:\n\n\tjinglectl <command> [flags] [arguments]\n\nThe commands are:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t%-12s%s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "\t%-12s%s\n", "help", "print the usage of jinglectl or of a command")
	b.WriteString("\nRun 'jinglectl <command> --help' (or 'jinglectl help <command>') for the usage of a\ncommand. Flags may come anywhere on the line, with one dash or two;\n'jinglectl --version' prints the version.\n\n")
	b.WriteString(exitStatuses)
	io.WriteString(w, b.String())
}

const helpUsage = `Usage: jinglectl help [command]

Help prints the usage of jinglectl, or of a command.
`

// runHelp is 'jinglectl help [command]'.
func runHelp(args []string, e env) int {
	var cmds []string
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			io.WriteString(e.stdout, helpUsage)
			return exitOK
		}
		cmds = append(cmds, a)
	}
	switch len(cmds) {
	case 0:
		usage(e.stdout)
		return exitOK
	case 1:
		for _, c := range commands() {
			if c.name == cmds[0] {
				return c.run([]string{"--help"}, e)
			}
		}
		if cmds[0] == "help" {
			io.WriteString(e.stdout, helpUsage)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "jinglectl: help: unknown command %q; see `jinglectl --help`\n", cmds[0])
		return exitUsage
	}
	fmt.Fprintln(e.stderr, "jinglectl: help: want at most one command; see `jinglectl help --help`")
	return exitUsage
}

// newFlagSet returns the flag set of a command: flags are accepted
// anywhere on the line (before, between and after the arguments) until
// "--".
func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// normalizeArgs rewrites the single-dash long flags jinglectl has always
// accepted (-json, -dir=x) as pflag's double-dash ones. Single-letter
// flags (-h, -q, -v) and the values of flags are left alone.
func normalizeArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, hasValue := strings.Cut(a[1:], "=")
			if f := fs.Lookup(name); f != nil || name == "help" {
				a = "-" + a
				if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
					out = append(out, a, args[i+1])
					i++
					continue
				}
			}
		} else if strings.HasPrefix(a, "--") {
			name, _, hasValue := strings.Cut(a[2:], "=")
			if f := fs.Lookup(name); f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
				out = append(out, a, args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// parseFlags parses a subcommand's flags. When it returns false the command
// must return status: usage was printed (to stdout for --help, status 0) or
// the flags were wrong (one line and a pointer to --help on stderr,
// status 2).
func parseFlags(fs *pflag.FlagSet, args []string, e env, usage func(io.Writer)) (status int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(normalizeArgs(fs, args)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			if e.onHelp != nil {
				e.onHelp(fs)
			}
			usage(e.stdout)
			return exitOK, false
		}
		return usageLine(e, fs.Name(), err.Error()), false
	}
	return 0, true
}

// usageLine prints a usage error as one line and where to read more, and
// returns exitUsage.
func usageLine(e env, cmd, msg string) int {
	fmt.Fprintf(e.stderr, "jinglectl: %s: %s; see `jinglectl %s --help`\n", cmd, safeText(msg), cmd)
	return exitUsage
}

// flagDefaults returns fs's flags as --help lists them.
func flagDefaults(fs *pflag.FlagSet) string {
	return fs.FlagUsagesWrapped(100)
}
