// Command pventer runs a command (default /bin/sh) inside a running
// Pantavisor container, in all of its namespaces:
//
//	pventer -c <container> [command [args…]]
//
// See package runtime/pventer. On devices the initrd links pventer to the
// multi-call pantavisor binary instead.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/pantavisor/pantavisor-go/runtime/pventer"
)

func main() {
	err := pventer.Run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	var ee pventer.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.Code)
	default:
		fmt.Fprintln(os.Stderr, "pventer:", err)
		os.Exit(1)
	}
}
