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
	current := global
	var globals, cmdFlags, positional []string
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
				continue
			}
			positional = append(positional, a)
			continue
		}
		target := &cmdFlags
		takesValue, known := current[name]
		if cmdName == "" {
			target = &globals
		} else if !known {
			if takesValue, known = global[name]; known {
				target = &globals
			}
		}
		*target = append(*target, a)
		if known && takesValue && !inline && i+1 < len(rest) {
			i++
			*target = append(*target, rest[i])
		}
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
