package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// runVersion is 'jinglectl version': it prints the version of the main
// module as the Go toolchain recorded it ("(devel)" for a build from a
// working tree, v1.2.3 for 'go install …@v1.2.3'), the module path and the
// Go version.
func runVersion(args []string, e env) int {
	fs := newFlagSet("version")
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: jinglectl version\n\nVersion prints the module version of jinglectl, its module path and the Go version it was built with.\n")
	}
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "version", "no arguments expected")
	}
	version, path, goVersion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.Main.Path != "" {
			path = bi.Main.Path
		}
		goVersion = bi.GoVersion
	}
	if _, err := fmt.Fprintf(e.stdout, "jinglectl %s, module %s, %s\n", version, path, goVersion); err != nil {
		fmt.Fprintf(e.stderr, "jinglectl: version: %v\n", err)
		return exitFailure
	}
	return exitOK
}
