package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

type prog struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	out            io.Writer
	c              *client.Client
	msg            string
	verbose        bool
}

const usage = `usage: pvcontrol [-s socket] [-f file] [-m msg] [-v] <command> [arguments]

commands:
  ls                                   list containers of the current revision
  containers ls|start|stop|restart <name>
  groups ls                            list container groups
  graph ls                             show the xconnect service graph
  daemons ls|get <name>|start <name>|stop <name>
  signal ready|alive                   signal the calling container's status
  cmd (or commands) reboot|poweroff [msg], run|run-commit|try-once <rev>,
      make-factory [rev], run-gc, enable-ssh, disable-ssh, go-remote,
      defer-reboot, unclaim, update-metadata <json>
  devmeta|usrmeta ls|save <key> <value>|delete <key>
  steps ls|get <rev>|put <file|-> <rev>|install <export.tgz|dir> <rev>|
        progress <rev>|commitmsg <rev> <msg>
  objects ls|get <sha>|put <file> [sha]
  conf ls                              list configuration (key, value, origin)
  buildinfo                            dump the build manifest
`

func (p *prog) main(ctx context.Context, args []string) (err error) {
	fs := flag.NewFlagSet("pvcontrol", flag.ContinueOnError)
	fs.SetOutput(p.stderr)
	fs.Usage = func() { fmt.Fprint(p.stderr, usage) }
	socket := fs.String("s", os.Getenv("PVCONTROL_SOCKET"), "control socket path")
	outFile := fs.String("f", "", "write the output to this file")
	fs.StringVar(&p.msg, "m", "", "commit message (steps put)")
	fs.BoolVar(&p.verbose, "v", false, "verbose")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: exitSyntax}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(p.stderr, usage)
		return &exitError{code: exitSyntax}
	}
	p.c = client.New(*socket)
	p.out = p.stdout
	cmd, rest := rest[0], rest[1:]
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help") {
		// "pvcontrol <command> -h", as the reference page suggests.
		fmt.Fprint(p.stdout, usage)
		return nil
	}
	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			return &exitError{code: exitUnknown, err: err}
		}
		p.out = f
		defer func() {
			// A failed close may mean the output never reached the disk.
			if cerr := f.Close(); cerr != nil && err == nil {
				err = &exitError{code: exitUnknown, err: fmt.Errorf("write %s: %w", *outFile, cerr)}
			}
		}()
	}
	switch cmd {
	case "ls":
		err = p.get(ctx, "/containers")
	case "containers":
		err = p.containers(ctx, rest)
	case "groups":
		err = p.lsOnly(ctx, rest, "/groups")
	case "graph":
		err = p.lsOnly(ctx, rest, "/xconnect-graph")
	case "daemons":
		err = p.daemons(ctx, rest)
	case "signal":
		err = p.signal(ctx, rest)
	case "cmd", "commands":
		err = p.command(ctx, rest)
	case "devmeta":
		err = p.meta(ctx, rest, "/device-meta")
	case "usrmeta":
		err = p.meta(ctx, rest, "/user-meta")
	case "steps":
		err = p.steps(ctx, rest)
	case "objects":
		err = p.objects(ctx, rest)
	case "conf":
		err = p.lsOnly(ctx, rest, "/config2")
	case "buildinfo":
		err = p.get(ctx, "/buildinfo")
	case "help", "-h":
		fmt.Fprint(p.stdout, usage)
		return nil
	default:
		return syntaxErr("unknown command %q (see pvcontrol -h)", cmd)
	}
	return err
}

// fail turns a client error into pvcontrol's exit status. kind selects the
// meaning of 422 ("objects", "steps").
func fail(err error, kind string) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusInsufficientStorage:
			return &exitError{code: exitNoSpace, err: err}
		case ae.Status == http.StatusUnprocessableEntity && kind == "objects":
			return &exitError{code: exitBadChecksum, err: err}
		case ae.Status == http.StatusUnprocessableEntity && kind == "steps":
			return &exitError{code: exitBadStep, err: err}
		}
	}
	return &exitError{code: exitUnknown, err: err}
}

// do sends a request and copies a successful answer to the output.
func (p *prog) do(ctx context.Context, method, path string, body io.Reader, n int64, kind string) error {
	if p.verbose {
		fmt.Fprintf(p.stderr, "%s %s\n", method, path)
	}
	resp, err := p.c.Do(ctx, method, path, body, n)
	if err != nil {
		return fail(err, kind)
	}
	defer resp.Body.Close()
	// Stream the answer: objects may be far larger than memory.
	w := &tailWriter{w: p.out}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if w.err != nil {
			return &exitError{code: exitUnknown, err: fmt.Errorf("write output: %w", w.err)}
		}
		return fail(err, kind)
	}
	if w.n > 0 && w.last != '\n' && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if _, err := io.WriteString(p.out, "\n"); err != nil {
			return &exitError{code: exitUnknown, err: fmt.Errorf("write output: %w", err)}
		}
	}
	return nil
}

// tailWriter forwards writes and remembers the last byte written and the
// first write error (to tell it from a read error of the answer).
type tailWriter struct {
	w    io.Writer
	n    int64
	last byte
	err  error
}

func (t *tailWriter) Write(b []byte) (int, error) {
	n, err := t.w.Write(b)
	t.n += int64(n)
	if n > 0 {
		t.last = b[n-1]
	}
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

func (p *prog) get(ctx context.Context, path string) error {
	return p.do(ctx, "GET", path, nil, 0, "")
}

func (p *prog) send(ctx context.Context, method, path string, body []byte, kind string) error {
	return p.do(ctx, method, path, bytes.NewReader(body), int64(len(body)), kind)
}

func (p *prog) sendJSON(ctx context.Context, method, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return &exitError{code: exitUnknown, err: err}
	}
	return p.send(ctx, method, path, b, "")
}

func (p *prog) lsOnly(ctx context.Context, args []string, path string) error {
	if len(args) != 1 || args[0] != "ls" {
		return syntaxErr("want: ls")
	}
	return p.get(ctx, path)
}

func seg(s string) string { return url.PathEscape(s) }

func (p *prog) containers(ctx context.Context, args []string) error {
	if len(args) == 1 && args[0] == "ls" {
		return p.get(ctx, "/containers")
	}
	if len(args) != 2 || (args[0] != "start" && args[0] != "stop" && args[0] != "restart") {
		return syntaxErr("containers: want ls, or start|stop|restart <name>")
	}
	return p.sendJSON(ctx, "PUT", "/containers/"+seg(args[1]), map[string]string{"action": args[0]})
}

func (p *prog) daemons(ctx context.Context, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "ls":
		return p.get(ctx, "/daemons")
	case len(args) == 2 && args[0] == "get":
		var ds []map[string]any
		if err := p.c.JSON(ctx, "GET", "/daemons", nil, &ds); err != nil {
			return fail(err, "")
		}
		for _, d := range ds {
			if d["name"] == args[1] {
				b, _ := json.Marshal(d)
				fmt.Fprintf(p.out, "%s\n", b)
				return nil
			}
		}
		return &exitError{code: exitUnknown, err: fmt.Errorf("daemon %q not found", args[1])}
	case len(args) == 2 && (args[0] == "start" || args[0] == "stop"):
		return p.sendJSON(ctx, "PUT", "/daemons/"+seg(args[1]), map[string]string{"action": args[0]})
	}
	return syntaxErr("daemons: want ls, get <name>, start <name> or stop <name>")
}

func (p *prog) signal(ctx context.Context, args []string) error {
	if len(args) != 1 || (args[0] != "ready" && args[0] != "alive") {
		return syntaxErr("signal: want ready or alive")
	}
	return p.sendJSON(ctx, "POST", "/signal", map[string]string{"type": args[0], "payload": ""})
}

// commandOps maps pvcontrol words to /commands ops and their argument
// rule: 'n' none, 'o' optional, 'r' required.
var commandOps = map[string]struct {
	op  string
	arg byte
}{
	"reboot":          {"REBOOT_DEVICE", 'o'},
	"poweroff":        {"POWEROFF_DEVICE", 'o'},
	"run":             {"LOCAL_RUN", 'r'},
	"run-commit":      {"LOCAL_RUN_COMMIT", 'r'},
	"try-once":        {"TRY_ONCE", 'r'},
	"local-apply":     {"LOCAL_APPLY", 'r'},
	"make-factory":    {"MAKE_FACTORY", 'o'},
	"run-gc":          {"RUN_GC", 'n'},
	"enable-ssh":      {"ENABLE_SSH", 'n'},
	"disable-ssh":     {"DISABLE_SSH", 'n'},
	"go-remote":       {"GO_REMOTE", 'n'},
	"defer-reboot":    {"DEFER_REBOOT", 'o'},
	"unclaim":         {"UNCLAIM", 'n'},
	"update-metadata": {"UPDATE_METADATA", 'r'},
	"xconnect-graph":  {"XCONNECT_GRAPH", 'n'},
}

func (p *prog) command(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return syntaxErr("cmd: missing command")
	}
	c, ok := commandOps[args[0]]
	if !ok {
		return syntaxErr("cmd: unknown command %q", args[0])
	}
	payload := strings.Join(args[1:], " ")
	switch {
	case c.arg == 'n' && len(args) > 1:
		return syntaxErr("cmd %s: takes no argument", args[0])
	case c.arg == 'r' && len(args) != 2:
		return syntaxErr("cmd %s: want one argument", args[0])
	}
	return p.sendJSON(ctx, "POST", "/commands", map[string]string{"op": c.op, "payload": payload})
}

func (p *prog) meta(ctx context.Context, args []string, path string) error {
	switch {
	case len(args) == 1 && args[0] == "ls":
		return p.get(ctx, path)
	case len(args) == 3 && args[0] == "save":
		return p.send(ctx, "PUT", path+"/"+seg(args[1]), []byte(args[2]), "")
	case len(args) == 2 && args[0] == "delete":
		return p.do(ctx, "DELETE", path+"/"+seg(args[1]), nil, 0, "")
	}
	return syntaxErr("want ls, save <key> <value> or delete <key>")
}

// revPath renders a revision for a URL (locals/<n> keeps its slash).
func revPath(rev string) string {
	if n, ok := strings.CutPrefix(rev, "locals/"); ok {
		return "locals/" + seg(n)
	}
	return seg(rev)
}

func (p *prog) steps(ctx context.Context, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "ls":
		return p.get(ctx, "/steps")
	case len(args) == 2 && args[0] == "get":
		return p.get(ctx, "/steps/"+revPath(args[1]))
	case len(args) == 2 && (args[0] == "progress" || args[0] == "show-progress"):
		return p.get(ctx, "/steps/"+revPath(args[1])+"/progress")
	case len(args) == 3 && args[0] == "commitmsg":
		return p.send(ctx, "PUT", "/steps/"+revPath(args[1])+"/commitmsg", []byte(args[2]), "")
	case len(args) == 3 && args[0] == "install":
		return p.install(ctx, args[1], args[2])
	case len(args) == 3 && args[0] == "put":
		rev := args[2]
		if !strings.HasPrefix(rev, "locals/") {
			rev = "locals/" + rev
		}
		var data []byte
		var err error
		if args[1] == "-" {
			data, err = io.ReadAll(p.stdin)
		} else {
			data, err = os.ReadFile(args[1])
		}
		if err != nil {
			return &exitError{code: exitUnknown, err: err}
		}
		if err := p.send(ctx, "PUT", "/steps/"+revPath(rev), data, "steps"); err != nil {
			return err
		}
		if p.msg != "" {
			return p.send(ctx, "PUT", "/steps/"+revPath(rev)+"/commitmsg", []byte(p.msg), "")
		}
		return nil
	}
	return syntaxErr("steps: want ls, get <rev>, put <file> <rev>, install <export|dir> <rev>, progress <rev> or commitmsg <rev> <msg>")
}

func (p *prog) objects(ctx context.Context, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "ls":
		return p.get(ctx, "/objects")
	case len(args) == 2 && args[0] == "get":
		return p.get(ctx, "/objects/"+seg(args[1]))
	case (len(args) == 2 || len(args) == 3) && args[0] == "put":
		f, err := os.Open(args[1])
		if err != nil {
			return &exitError{code: exitUnknown, err: err}
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return &exitError{code: exitUnknown, err: err}
		}
		var sha string
		if len(args) == 3 {
			sha = args[2]
		} else {
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			sha = hex.EncodeToString(h.Sum(nil))
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
		}
		if err := p.do(ctx, "PUT", "/objects/"+seg(sha), f, fi.Size(), "objects"); err != nil {
			return err
		}
		fmt.Fprintln(p.out, sha)
		return nil
	}
	return syntaxErr("objects: want ls, get <sha> or put <file> [sha]")
}
