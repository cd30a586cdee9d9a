package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

const completionUsage = `Usage: jinglectl completion bash|zsh|fish

Completion prints a script that makes the shell complete jinglectl's
commands, flags and their values. Load it with:

  bash:  source <(jinglectl completion bash)      (or save it in /etc/bash_completion.d/jinglectl)
  zsh:   source <(jinglectl completion zsh)       (or save it as _jinglectl in a directory of $fpath)
  fish:  jinglectl completion fish > ~/.config/fish/completions/jinglectl.fish
`

// flagInfo is one flag of a command, as its usage lists it.
type flagInfo struct {
	name, desc string
	value      bool // takes a value
}

// textFlag matches a flag listed in a usage text written by hand.
var textFlag = regexp.MustCompile(`^\s+--([a-z][a-z0-9-]*)\s{2,}(.*)$`)

// commandHelp runs a command with --help and returns its usage text and
// its flags (nil for a command without a flag set).
func commandHelp(name string) (string, *pflag.FlagSet) {
	var out bytes.Buffer
	var fs *pflag.FlagSet
	for _, c := range commands() {
		if c.name == name {
			c.run([]string{"--help"}, env{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard,
				lookupEnv: func(string) string { return "" }, onHelp: func(f *pflag.FlagSet) { fs = f }})
		}
	}
	return out.String(), fs
}

// commandFlags lists a command's flags, from its flag set and from the
// flags its usage text lists by hand.
func commandFlags(name string) []flagInfo {
	if name == "completion" || name == "help" {
		return nil
	}
	text, fs := commandHelp(name)
	var flags []flagInfo
	seen := map[string]bool{}
	if fs != nil {
		fs.VisitAll(func(f *pflag.Flag) {
			_, desc := pflag.UnquoteUsage(f)
			seen[f.Name] = true
			flags = append(flags, flagInfo{name: f.Name, desc: desc, value: f.NoOptDefVal == ""})
		})
	}
	for _, line := range strings.Split(text, "\n") {
		if m := textFlag.FindStringSubmatch(line); m != nil && !seen[m[1]] {
			seen[m[1]] = true
			flags = append(flags, flagInfo{name: m[1], desc: m[2]})
		}
	}
	return append(flags, flagInfo{name: "help", desc: "show the usage"})
}

// flagValues are the values offered for a flag ("" entries: files).
func flagValues(name string) []string {
	switch name {
	case "transport":
		return []string{"auto", "ibb", "s5b", "ice"}
	case "log-level":
		return []string{"debug", "info", "warn", "error"}
	}
	return nil
}

// fileFlags complete file names.
var fileFlags = []string{"config", "password-file", "ca-file", "dir", "socket"}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return append(names, "help")
}

func runCompletion(args []string, e env) int {
	fs := newFlagSet("completion")
	usage := func(w io.Writer) { io.WriteString(w, completionUsage) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 1 {
		return usageLine(e, "completion", "want one shell: bash, zsh or fish")
	}
	var script string
	switch fs.Arg(0) {
	case "bash":
		script = bashCompletion()
	case "zsh":
		script = zshCompletion()
	case "fish":
		script = fishCompletion()
	default:
		return usageLine(e, "completion", fmt.Sprintf("unknown shell %q: want bash, zsh or fish", fs.Arg(0)))
	}
	if _, err := io.WriteString(e.stdout, script); err != nil {
		fmt.Fprintf(e.stderr, "jinglectl: completion: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// argKind says what a command's arguments are: files, commands, shells
// or nothing to complete.
func argKind(cmd string) string {
	switch cmd {
	case "send", "inspect":
		return "files"
	case "help":
		return "commands"
	case "completion":
		return "shells"
	}
	return "none"
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString("# bash completion for jinglectl (jinglectl completion bash)\n")
	b.WriteString("_jinglectl() {\n")
	b.WriteString("\tlocal cur prev cmd flags\n")
	b.WriteString("\tcur=\"${COMP_WORDS[COMP_CWORD]}\"\n")
	b.WriteString("\tprev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	fmt.Fprintf(&b, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\tCOMPREPLY=( $(compgen -W %q -- \"$cur\") )\n\t\treturn\n\tfi\n", strings.Join(commandNames(), " "))
	b.WriteString("\tcmd=\"${COMP_WORDS[1]}\"\n")
	b.WriteString("\tcase \"$prev\" in\n")
	fmt.Fprintf(&b, "\t--transport|-transport) COMPREPLY=( $(compgen -W %q -- \"$cur\") ); return ;;\n", strings.Join(flagValues("transport"), " "))
	fmt.Fprintf(&b, "\t--log-level|-log-level) COMPREPLY=( $(compgen -W %q -- \"$cur\") ); return ;;\n", strings.Join(flagValues("log-level"), " "))
	var fileAlts []string
	for _, f := range fileFlags {
		fileAlts = append(fileAlts, "--"+f, "-"+f)
	}
	fmt.Fprintf(&b, "\t%s) COMPREPLY=( $(compgen -f -- \"$cur\") ); return ;;\n", strings.Join(fileAlts, "|"))
	b.WriteString("\tesac\n")
	b.WriteString("\tcase \"$cmd\" in\n")
	for _, c := range commands() {
		var names []string
		for _, f := range commandFlags(c.name) {
			names = append(names, "--"+f.name)
		}
		fmt.Fprintf(&b, "\t%s) flags=%q ;;\n", c.name, strings.Join(names, " "))
	}
	b.WriteString("\t*) flags=\"\" ;;\n\tesac\n")
	b.WriteString("\tif [[ \"$cur\" == -* ]]; then\n\t\tCOMPREPLY=( $(compgen -W \"$flags\" -- \"$cur\") )\n\t\treturn\n\tfi\n")
	b.WriteString("\tcase \"$cmd\" in\n")
	fmt.Fprintf(&b, "\thelp) COMPREPLY=( $(compgen -W %q -- \"$cur\") ) ;;\n", strings.Join(commandNames(), " "))
	b.WriteString("\tcompletion) COMPREPLY=( $(compgen -W \"bash zsh fish\" -- \"$cur\") ) ;;\n")
	b.WriteString("\tsend|inspect) COMPREPLY=( $(compgen -f -- \"$cur\") ) ;;\n")
	b.WriteString("\tesac\n")
	b.WriteString("}\n")
	b.WriteString("complete -o filenames -o default -F _jinglectl jinglectl\n")
	return b.String()
}

// zshQuote escapes a description for an _arguments spec.
func zshQuote(s string) string {
	s = strings.NewReplacer("[", "(", "]", ")", ":", " -", "'", "", "\\", "").Replace(s)
	return truncate(s, 90)
}

func zshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef jinglectl\n# zsh completion for jinglectl (jinglectl completion zsh)\n\n")
	b.WriteString("_jinglectl() {\n")
	b.WriteString("\tlocal -a commands\n\tcommands=(\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t\t'%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("\t\t'help:print the usage of jinglectl or of a command'\n\t)\n")
	b.WriteString("\tif (( CURRENT == 2 )); then\n\t\t_describe 'command' commands\n\t\treturn\n\tfi\n")
	b.WriteString("\tlocal cmd=$words[2]\n\tshift words\n\t(( CURRENT-- ))\n")
	b.WriteString("\tcase $cmd in\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t%s)\n\t\t_arguments -s \\\n", c.name)
		for _, f := range commandFlags(c.name) {
			switch {
			case !f.value:
				fmt.Fprintf(&b, "\t\t\t'--%s[%s]' \\\n", f.name, zshQuote(f.desc))
			case flagValues(f.name) != nil:
				fmt.Fprintf(&b, "\t\t\t'--%s=[%s]:value:(%s)' \\\n", f.name, zshQuote(f.desc), strings.Join(flagValues(f.name), " "))
			case slices.Contains(fileFlags, f.name):
				fmt.Fprintf(&b, "\t\t\t'--%s=[%s]:file:_files' \\\n", f.name, zshQuote(f.desc))
			default:
				fmt.Fprintf(&b, "\t\t\t'--%s=[%s]:value:' \\\n", f.name, zshQuote(f.desc))
			}
		}
		switch argKind(c.name) {
		case "files":
			b.WriteString("\t\t\t'*:file:_files'\n")
		case "shells":
			b.WriteString("\t\t\t'1:shell:(bash zsh fish)'\n")
		default:
			b.WriteString("\t\t\t'*::'\n")
		}
		b.WriteString("\t\t;;\n")
	}
	b.WriteString("\thelp) _describe 'command' commands ;;\n")
	b.WriteString("\tesac\n}\n\n")
	b.WriteString("if [ \"$funcstack[1]\" = \"_jinglectl\" ]; then\n\t_jinglectl \"$@\"\nelse\n\tcompdef _jinglectl jinglectl\nfi\n")
	return b.String()
}

// fishQuote quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(truncate(s, 90)) + "'"
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for jinglectl (jinglectl completion fish)\n")
	b.WriteString("complete -c jinglectl -f\n")
	all := strings.Join(commandNames(), " ")
	for _, c := range commands() {
		fmt.Fprintf(&b, "complete -c jinglectl -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n", all, c.name, fishQuote(c.summary))
	}
	fmt.Fprintf(&b, "complete -c jinglectl -n 'not __fish_seen_subcommand_from %s' -a help -d 'print the usage of jinglectl or of a command'\n", all)
	for _, c := range commands() {
		cond := fmt.Sprintf("'__fish_seen_subcommand_from %s'", c.name)
		for _, f := range commandFlags(c.name) {
			line := fmt.Sprintf("complete -c jinglectl -n %s -l %s", cond, f.name)
			switch {
			case !f.value:
			case flagValues(f.name) != nil:
				line += fmt.Sprintf(" -x -a %s", fishQuote(strings.Join(flagValues(f.name), " ")))
			case slices.Contains(fileFlags, f.name):
				line += " -r -F"
			default:
				line += " -x"
			}
			b.WriteString(line + " -d " + fishQuote(f.desc) + "\n")
		}
		switch argKind(c.name) {
		case "files":
			fmt.Fprintf(&b, "complete -c jinglectl -n %s -F\n", cond)
		case "shells":
			fmt.Fprintf(&b, "complete -c jinglectl -n %s -a 'bash zsh fish'\n", cond)
		}
	}
	fmt.Fprintf(&b, "complete -c jinglectl -n '__fish_seen_subcommand_from help' -a %s\n", fishQuote(all))
	return b.String()
}
