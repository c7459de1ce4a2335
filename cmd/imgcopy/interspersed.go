package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed rewrites a command line so that flags written after the positional arguments,
// and global flags written after the command name, come first. skopeo (cobra) accepts
// `skopeo copy SRC DST --all`; urfave/cli stops parsing flags at the first argument. Tokens
// after "--" stay positional, and the "--" itself moves before every positional argument;
// unknown flags are left where urfave/cli will report them.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagArity(app.Flags)
	// Only the true global flags may follow another command's name: the app's copy flags
	// (--all, --src-creds, ...) there would be parsed and ignored, so they stay with the
	// command, which reports them.
	trueGlobal := flagArity(globalFlags())
	current := global
	var globals, cmdFlags, positional []string
	var early [][]string // flags (with their values) before the command name, see below
	cmdName, dashDash := "", false
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional, dashDash = append(positional, rest[i+1:]...), true
			break
		}
		name, inline, isFlag := splitFlag(a)
		if !isFlag {
			if cmdName == "" && len(positional) == 0 && app.Command(a) != nil {
				cmdName, current = a, flagArity(app.Command(a).Flags)
				// A flag of the command written before its name (`imgcopy --all copy SRC
				// DST`) would set the app-level flag of the default copy, which the command
				// never reads: give it to the command.
				for _, f := range early {
					name, _, _ := splitFlag(f[0])
					_, isGlobal := trueGlobal[name]
					if _, ok := current[name]; ok || (!isGlobal && a != "copy") {
						cmdFlags = append(cmdFlags, f...)
					} else {
						globals = append(globals, f...)
					}
				}
				early = nil
				continue
			}
			positional = append(positional, a)
			continue
		}
		var flag []string
		target := &cmdFlags
		takesValue, known := current[name]
		if cmdName == "" && len(positional) > 0 {
			target = &globals
		} else if cmdName == "" {
			target = &flag
		} else if !known {
			if takesValue, known = global[name]; known {
				if _, ok := trueGlobal[name]; ok || cmdName == "copy" {
					target = &globals
				}
			}
		}
		*target = append(*target, a)
		if known && takesValue && !inline && i+1 < len(rest) {
			i++
			*target = append(*target, rest[i])
		}
		if flag != nil {
			early = append(early, flag)
		}
	}
	for _, f := range early { // no command followed: the flags are the app's
		globals = append(globals, f...)
	}
	out := append([]string{args[0]}, globals...)
	if cmdName != "" {
		out = append(out, cmdName)
	}
	out = append(out, cmdFlags...)
	if dashDash {
		// The "--" goes before every positional argument, so that urfave/cli consumes it and
		// takes what follows it (SRC -- DST, or a name that starts with "-") as arguments.
		out = append(out, "--")
	}
	return append(out, positional...)
}

// flagArity maps every name and alias of flags to whether the flag takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		takes := true
		if dg, ok := f.(cli.DocGenerationFlag); ok {
			takes = dg.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = takes
		}
	}
	return m
}

// splitFlag parses "-x", "--name" or "--name=value".
func splitFlag(a string) (name string, inline bool, isFlag bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false, false
	}
	name = strings.TrimLeft(a, "-")
	if n, _, ok := strings.Cut(name, "="); ok {
		return n, true, true
	}
	return name, false, true
}
