// Command pvtest runs the App Engine test suites under tests/ and
// assembles the App Engine package.
//
//	pvtest ls                                   list the tests
//	pvtest run [group[:n]]... [-i] [-m] [-o] [-v] [-k] [-j N] [-factory]
//	                                            run tests (see ./test.docker.sh);
//	                                            -factory puts the containers in
//	                                            revision 0 instead of LOCAL_RUN
//	pvtest add <group>                          new test from a template
//	pvtest package <out> [-arch amd64|arm64]    assemble the App Engine package
//	pvtest json <path> <doc.json                print a value (json_get helper)
//	pvtest children <pid>                       direct children (pv_pid helper)
//	pvtest unixsend <socket> <data              write stdin to a unix stream socket, print the reply
//	pvtest http [-host H] <socket> <METHOD> <path> [body]   raw pv-ctrl request
//	pvtest webui <base-url> <export> [part]                 pvr-sdk's web UI in headless Chromium
//
// Tests live in <root>/<group>/<n>/ (root: -C dir/tests, default ./tests).
// Each runs in a child of this program started in a new mount namespace.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if err != errFailed {
			fmt.Fprintln(os.Stderr, "pvtest:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  pvtest ls
  pvtest run [group[:n]]... [-i] [-m] [-o] [-v] [-k] [-j N] [-package DIR] [-factory]
  pvtest add <group>
  pvtest package <out> [-arch amd64|arm64]
  pvtest json <path>   (JSON on stdin)
  pvtest children <pid>
  pvtest unixsend <socket>   (data on stdin)
  pvtest http [-host H] <socket> <METHOD> <path> [body]
  pvtest pvr clone <repo> <dir> | set <dir> <key> <value> | post <repo> <dir> <msg> [rev]
  pvtest webui <base-url> <export.tar.gz> [part to remove]
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ls":
		return list(stdout, args)
	case "run":
		return runTests(ctx, args, stdin, stdout, stderr)
	case "add":
		return add(stdout, args)
	case "package":
		return pkg(ctx, args, stderr)
	case "json":
		return jsonCmd(args, stdin, stdout)
	case "children":
		return children(args, stdout)
	case "unixsend":
		return unixSend(ctx, args, stdin, stdout)
	case "http":
		return httpCmd(ctx, args, stdout)
	case "pvr":
		return pvrCmd(ctx, args, stdout)
	case "webui":
		return webuiCmd(ctx, args, stdout)
	case childCmd:
		return child(ctx, args, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
