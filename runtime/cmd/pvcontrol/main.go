// Command pvcontrol manages a Pantavisor system through its control socket.
//
//	pvcontrol [-s <socket>] [-f <file>] [-m <msg>] [-v] <command> [arguments]
//
// Commands: ls; containers ls|start|stop|restart <name>; groups ls;
// graph ls; daemons ls|get|start|stop <name>; signal ready|alive;
// cmd|commands reboot|poweroff [msg], run|run-commit|try-once <rev>,
// make-factory [rev], run-gc, enable-ssh, disable-ssh, go-remote,
// defer-reboot, unclaim, update-metadata <json>; devmeta|usrmeta
// ls|save <key> <value>|delete <key>; steps ls|get <rev>|put <file> <rev>|
// install <export|dir> <rev>|progress <rev>|commitmsg <rev> <msg>; objects ls|get <sha>|put <file> [sha];
// conf ls; buildinfo.
//
// "pvcontrol -h" and "pvcontrol <command> -h" print the usage. Answers
// are streamed to stdout or the -f file; a failed write is exit 255.
//
// The socket is -s, else $PVCONTROL_SOCKET, else the first existing of
// /run/pantavisor/pv/pv-ctrl, /pv/pv-ctrl, /pantavisor/pv-ctrl.
//
// Exit status: 0 success, 1 syntax error, 48 not enough disk space, 60
// object has bad checksum, 70 step verification failed, 255 any other
// failure or unexpected answer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err == nil {
		os.Exit(0)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "pvcontrol:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "pvcontrol:", err)
	os.Exit(255)
}

// exitError is an error with pvcontrol's documented exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Exit statuses (pvcontrol reference page).
const (
	exitSyntax      = 1
	exitNoSpace     = 48
	exitBadChecksum = 60
	exitBadStep     = 70
	exitUnknown     = 255
)

func syntaxErr(format string, a ...any) error {
	return &exitError{code: exitSyntax, err: fmt.Errorf(format, a...)}
}

// run is pvcontrol as a library: tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	p := &prog{stdin: stdin, stdout: stdout, stderr: stderr}
	return p.main(ctx, args)
}
