package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// runVersion is 'jinglectl version' (and --version): it prints the
// version of the main module as the Go toolchain recorded it ("(devel)"
// for a build from a working tree, v1.2.3 for 'go install …@v1.2.3'), the
// VCS revision and commit date it was built from (with "+modified" when
// the tree had local changes), the module path and the Go version.
func runVersion(args []string, e env) int {
	fs := newFlagSet("version")
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: jinglectl version\n\nVersion prints the module version of jinglectl, the commit and commit date it\nwas built from, its module path and the Go version it was built with.\n")
	}
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "version", "no arguments expected")
	}
	bi, _ := debug.ReadBuildInfo()
	if _, err := fmt.Fprintln(e.stdout, versionLine(bi)); err != nil {
		fmt.Fprintf(e.stderr, "jinglectl: version: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// The commit and its date when the build info has none (a build from a git
// worktree, which the go command does not stamp, or with -buildvcs=false):
// 'make dist' sets them with -ldflags -X.
var (
	linkedRevision string
	linkedTime     string
)

// versionLine describes a build: "jinglectl (devel), commit 0123abcd…
// (2026-12-05T23:00:00Z), module github.com/jinglekit/jinglekit, go1.26".
func versionLine(bi *debug.BuildInfo) string {
	version, path, goVersion := "unknown", "unknown", "unknown"
	var revision, date string
	modified := false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.Main.Path != "" {
			path = bi.Main.Path
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if revision == "" {
		revision, date = linkedRevision, linkedTime
	}
	line := "jinglectl " + version
	if revision != "" {
		line += ", commit " + revision
		if modified {
			line += "+modified"
		}
		if date != "" {
			line += " (" + date + ")"
		}
	} else {
		line += ", commit unknown (built without VCS information)"
	}
	return line + ", module " + path + ", " + goVersion
}
