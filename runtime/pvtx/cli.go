package pvtx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

// Usage is the command summary printed by "pvtx" without arguments.
const Usage = `Usage: pvtx <command> [args]

Transactions:
  pvtx begin <base> [object]      start a transaction; base: empty, current,
                                  a JSON file, a directory with json or
                                  .pvr/json, or a revision; with object the
                                  transaction is local (objects written there)
  pvtx add <file> | -             merge a JSON, tar, tar.gz, tgz or tar.bz2
                                  package (- reads stdin)
  pvtx remove <part>              remove a part (nginx, _config/nginx,
                                  _sigs/nginx.json)
  pvtx abort                      discard the transaction
  pvtx commit [locals/<name>]     send a remote transaction to pv-ctrl and
                                  print the revision name
  pvtx show                       print the transaction's state JSON
  pvtx deploy <directory>         write a local transaction as a revision dir

Queues:
  pvtx queue new <queue> <object>
  pvtx queue remove <part>
  pvtx queue unpack <tarball> | -
  pvtx queue process [base] [queue] [object]

Environment: PVTXDIR (state directory), PVCONTROL_SOCKET (pv-ctrl socket,
else auto-detected), PVTX_OBJECT_BUF_SIZE, PVTX_CTRL_BUF_SIZE.
Commands may be abbreviated.
`

// Exit codes of upstream pvtx.
const (
	ExitOK            = 0
	ExitAddNoTx       = 1   // add without an active transaction
	ExitRemoveNoTx    = 3   // remove without an active transaction
	ExitRemoveNoArg   = 4   // remove without a part
	ExitNoTx          = 11  // show, commit, deploy without an active transaction
	ExitLocalOrActive = 12  // commit of a local transaction; queue new while active
	ExitFailure       = 255 // everything else (upstream's -1)
)

// ExitError is a failed command: main prints "ERROR: <Error()>" and exits
// with Code.
type ExitError struct {
	Cmd  string
	Code int
	Err  error
}

// Error returns "<cmd>: <message>", the text after "ERROR: ".
func (e *ExitError) Error() string { return e.Cmd + ": " + e.Err.Error() }

// Unwrap returns the command's error.
func (e *ExitError) Unwrap() error { return e.Err }

// CLI is the pvtx command line bound to its environment.
type CLI struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (nil: empty environment).
	Getenv func(string) string
	// Euid selects the default PVTXDIR.
	Euid int
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Now and Rand are passed to Options (nil: real ones).
	Now  func() time.Time
	Rand func(int) int
}

// commands in upstream's matching order: a word selects the first command
// it is a prefix of.
var (
	commands      = []string{"begin", "add", "remove", "abort", "commit", "show", "deploy", "queue"}
	queueCommands = []string{"new", "remove", "unpack", "process"}
)

// match returns the first of words that w is a non-empty prefix of.
func match(w string, words []string) (string, bool) {
	if w == "" {
		return "", false
	}
	for _, c := range words {
		if strings.HasPrefix(c, w) {
			return c, true
		}
	}
	return "", false
}

// Run runs one pvtx command; args excludes the program name. Failures are
// *ExitError.
func (c *CLI) Run(ctx context.Context, args []string) error {
	getenv := c.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		io.WriteString(c.Stderr, Usage)
		return &ExitError{Cmd: "pvtx", Code: ExitFailure, Err: errors.New("missing command")}
	}
	switch args[0] {
	case "-h", "--help", "help":
		io.WriteString(c.Stdout, Usage)
		return nil
	}
	cmd, ok := match(args[0], commands)
	if !ok {
		io.WriteString(c.Stderr, Usage)
		return &ExitError{Cmd: args[0], Code: ExitFailure, Err: errors.New("unknown command")}
	}
	rest := args[1:]
	if cmd == "queue" {
		if len(rest) == 0 {
			return &ExitError{Cmd: cmd, Code: ExitFailure, Err: fmt.Errorf("%w: queue command", ErrMissingArg)}
		}
		sub, ok := match(rest[0], queueCommands)
		if !ok {
			return &ExitError{Cmd: "queue " + rest[0], Code: ExitFailure, Err: errors.New("unknown queue command")}
		}
		cmd, rest = "queue "+sub, rest[1:]
	}
	tx, err := c.open(getenv)
	if err == nil {
		var unlock func()
		if unlock, err = tx.LockContext(ctx); err == nil {
			err = c.dispatch(ctx, tx, cmd, rest)
			unlock()
		}
	}
	if err != nil {
		return &ExitError{Cmd: cmd, Code: exitCode(cmd, err), Err: err}
	}
	return nil
}

func (c *CLI) open(getenv func(string) string) (*Tx, error) {
	dir := getenv("PVTXDIR")
	if dir == "" {
		var err error
		if dir, err = DefaultDir(getenv, c.Euid); err != nil {
			return nil, err
		}
	}
	bufSize, err := envSize(getenv, "PVTX_OBJECT_BUF_SIZE", 512, 10<<20)
	if err != nil {
		return nil, err
	}
	// PVTX_CTRL_BUF_SIZE is validated for compatibility; net/http does
	// its own buffering of the socket.
	if _, err := envSize(getenv, "PVTX_CTRL_BUF_SIZE", 16<<10, 10<<20); err != nil {
		return nil, err
	}
	return Open(Options{
		Dir:           dir,
		Client:        client.New(getenv("PVCONTROL_SOCKET")),
		Log:           c.Log,
		Now:           c.Now,
		Rand:          c.Rand,
		ObjectBufSize: bufSize,
	})
}

// envSize reads a buffer size variable; unset is 0 (the default).
func envSize(getenv func(string) string, name string, min, max int) (int, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s=%q: want a number of bytes from %d to %d", name, v, min, max)
	}
	return n, nil
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// input opens a package argument: "-" is stdin.
func (c *CLI) input(name string) (io.Reader, func(), error) {
	if name == "" {
		return nil, nil, fmt.Errorf("%w: file or -", ErrMissingArg)
	}
	if name == "-" {
		return c.Stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func (c *CLI) dispatch(ctx context.Context, tx *Tx, cmd string, args []string) error {
	switch cmd {
	case "begin":
		return tx.Begin(ctx, arg(args, 0), arg(args, 1))
	case "add":
		// Upstream checks the transaction before touching the input.
		if _, err := tx.activeStatus(); err != nil {
			return err
		}
		r, done, err := c.input(arg(args, 0))
		if err != nil {
			return err
		}
		defer done()
		return tx.Add(ctx, r)
	case "remove":
		return tx.Remove(arg(args, 0))
	case "abort":
		return tx.Abort()
	case "commit":
		name, err := tx.Commit(ctx, arg(args, 0))
		if err != nil {
			return err
		}
		fmt.Fprintln(c.Stdout, name)
		return nil
	case "show":
		data, err := tx.Show()
		if err != nil {
			return err
		}
		c.Stdout.Write(append(data, '\n'))
		return nil
	case "deploy":
		return tx.Deploy(arg(args, 0))
	case "queue new":
		return tx.QueueNew(arg(args, 0), arg(args, 1))
	case "queue remove":
		return tx.QueueRemove(arg(args, 0))
	case "queue unpack":
		name := arg(args, 0)
		r, done, err := c.input(name)
		if err != nil {
			return err
		}
		defer done()
		base := "package"
		if name != "-" {
			base = filepath.Base(name)
		}
		return tx.QueueUnpack(ctx, r, base)
	case "queue process":
		if len(args) == 2 || len(args) > 3 {
			return fmt.Errorf("%w: usage: queue process [base] [queue object]", ErrMissingArg)
		}
		return tx.QueueProcess(ctx, arg(args, 0), arg(args, 1), arg(args, 2))
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// exitCode maps a command's error to upstream's exit code.
func exitCode(cmd string, err error) int {
	switch {
	case cmd == "add" && errors.Is(err, ErrNoTransaction):
		return ExitAddNoTx
	case cmd == "remove" && errors.Is(err, ErrMissingArg):
		return ExitRemoveNoArg
	case cmd == "remove" && errors.Is(err, ErrNoTransaction):
		return ExitRemoveNoTx
	case (cmd == "show" || cmd == "commit" || cmd == "deploy") && errors.Is(err, ErrNoTransaction):
		return ExitNoTx
	case cmd == "commit" && errors.Is(err, ErrLocal):
		return ExitLocalOrActive
	case cmd == "queue new" && errors.Is(err, ErrActive):
		return ExitLocalOrActive
	}
	return ExitFailure
}
