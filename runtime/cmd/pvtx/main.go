// Command pvtx builds Pantavisor revisions in transactions (see package
// runtime/pvtx). Errors are printed as "ERROR: <cmd>: <msg>" and the exit
// code is upstream's (0, 1, 3, 4, 11, 12 or 255).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		var ee *pvtx.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		os.Exit(pvtx.ExitFailure)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &pvtx.CLI{
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		Getenv: os.Getenv,
		Euid:   os.Geteuid(),
	}
	return c.Run(ctx, args)
}
