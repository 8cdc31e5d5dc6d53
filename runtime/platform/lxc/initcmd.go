package lxc

import (
	"errors"
	"strings"
)

// ErrInitCmd reports an lxc.init.cmd with an unbalanced double quote.
var ErrInitCmd = errors.New("lxc.init.cmd: unbalanced double quote")

// InitArgv splits an lxc.init.cmd as pvr's builtin template writes it
// (the first word bare, the others in double quotes:
// /bin/sh "-c" "echo hi") into the init's argv. liblxc splits
// lxc.init.cmd at spaces only and would pass the quotes on ("-c" with its
// quotes, "echo and hi" as two words), so an image's Cmd such as
// ["nginx", "-g", "daemon off;"] could not start. A command without
// quotes returns nil: liblxc's own split applies, as before.
func InitArgv(cmd string) ([]string, error) {
	if !strings.Contains(cmd, `"`) {
		return nil, nil
	}
	var argv []string
	var w strings.Builder
	in, have := false, false
	for _, r := range cmd {
		switch {
		case r == '"':
			in, have = !in, true
		case (r == ' ' || r == '\t') && !in:
			if have {
				argv = append(argv, w.String())
				w.Reset()
				have = false
			}
		default:
			w.WriteRune(r)
			have = true
		}
	}
	if in {
		return nil, ErrInitCmd
	}
	if have {
		argv = append(argv, w.String())
	}
	return argv, nil
}
