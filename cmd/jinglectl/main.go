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
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
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
// exit status.
func run(args []string, e env) int {
	fs := flag.NewFlagSet("jinglectl", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout)
			return exitOK
		}
		usage(e.stderr)
		return exitUsage
	}
	if fs.NArg() == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return runHelp(rest, e)
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(rest, e)
		}
	}
	fmt.Fprintf(e.stderr, "jinglectl: unknown command %q\nRun 'jinglectl help' for usage.\n", name)
	return exitUsage
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("jinglectl is a tool for XMPP Jingle (XEP-0166) sessions.\n\n")
	b.WriteString("Usage:\n\n\tjinglectl <command> [flags] [arguments]\n\nThe commands are:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t%-12s%s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "\t%-12s%s\n", "help", "print the usage of jinglectl or of a command")
	b.WriteString("\nRun 'jinglectl <command> -help' for the usage of a command.\n\n")
	b.WriteString(exitStatuses)
	io.WriteString(w, b.String())
}

// runHelp is 'jinglectl help [command]'.
func runHelp(args []string, e env) int {
	switch len(args) {
	case 0:
		usage(e.stdout)
		return exitOK
	case 1:
		for _, c := range commands() {
			if c.name == args[0] {
				return c.run([]string{"-help"}, e)
			}
		}
		fmt.Fprintf(e.stderr, "jinglectl: help: unknown command %q\n", args[0])
		return exitUsage
	}
	fmt.Fprintln(e.stderr, "usage: jinglectl help [command]")
	return exitUsage
}

// parseFlags parses a subcommand's flags. When it returns false the command
// must return status: usage was printed (to stdout for -help, status 0) or
// the flags were wrong (the error and usage on stderr, status 2).
func parseFlags(fs *flag.FlagSet, args []string, e env, usage func(io.Writer)) (status int, ok bool) {
	fs.SetOutput(e.stderr)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout)
			return exitOK, false
		}
		usage(e.stderr)
		return exitUsage, false
	}
	return 0, true
}

// flagDefaults returns fs's flags as PrintDefaults writes them.
func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	return b.String()
}
