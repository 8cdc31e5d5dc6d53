package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/appengine"
	"github.com/pantavisor/pantavisor-go/runtime/pvtest"
)

const suitesDir = "tests"

func list(stdout io.Writer, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: pvtest ls")
	}
	ids, err := pvtest.Discover(suitesDir)
	if err != nil {
		return err
	}
	for _, id := range ids {
		b, err := os.ReadFile(filepath.Join(suitesDir, id.Path(), "test.json"))
		if err != nil {
			return err
		}
		t, err := pvtest.Parse(b)
		if err != nil {
			fmt.Fprintf(stdout, "%-14s BAD  %v\n", id, err)
			continue
		}
		mark := "    "
		if t.Skip {
			mark = "skip"
		}
		fmt.Fprintf(stdout, "%-14s %s %s\n", id, mark, t.Description)
	}
	return nil
}

const template = `{
	"#spec": "pv-test@1",
	"description": "describe what this test proves",
	"setup": {
		"cmdline": "",
		"containers": {
			"control": "",
			"tarballs": [],
			"urls": []
		}
	},
	"test-script": "resources/test",
	"skip": "false"
}
`

const templateScript = `# POSIX sh; helpers (pvcontrol, pventer, wait_for_*, pv_reboot, json_get…)
# are already sourced (see tests/README.md). Only stdout is compared with
# ../output; record it with: ./test.docker.sh run <group>:<n> -o
pvcontrol steps progress current | json_get status
`

func add(stdout io.Writer, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: pvtest add <group>")
	}
	n, err := pvtest.Next(suitesDir, args[0])
	if err != nil {
		return err
	}
	dir := filepath.Join(suitesDir, args[0], strconv.Itoa(n))
	if err := os.MkdirAll(filepath.Join(dir, "resources"), 0o755); err != nil {
		return err
	}
	for name, data := range map[string]string{"test.json": template, "resources/test": templateScript, "output": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, dir)
	return nil
}

func pkg(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	arch := fs.String("arch", "", "Debian architecture (default: host)")
	var out string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		out, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" && fs.NArg() == 1 {
		out = fs.Arg(0)
	}
	if out == "" {
		return errors.New("usage: pvtest package <out> [-arch amd64|arm64]")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return appengine.Assemble(ctx, appengine.Options{Repo: ".", Out: out, Arch: *arch, Log: log})
}

func jsonCmd(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 1 {
		return errors.New("usage: pvtest json <path> <doc.json")
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	path := ""
	if len(args) == 1 {
		path = args[0]
	}
	v, err := pvtest.JSONGet(data, path)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, v)
	return nil
}

func children(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: pvtest children <pid>")
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("pid %q: %w", args[0], err)
	}
	for _, c := range pvtest.Children(pid) {
		fmt.Fprintln(stdout, c)
	}
	return nil
}

func unixSend(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: pvtest unixsend <socket>")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", args[0])
	if err != nil {
		return err
	}
	if _, err := io.Copy(c, stdin); err != nil {
		c.Close()
		return err
	}
	// Stay alive a moment: the log server identifies the sender from
	// /proc/<peer pid>/cgroup, which is gone once the sender exits. Print
	// whatever the peer answers meanwhile.
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	reply, _ := io.ReadAll(c)
	if len(reply) > 0 {
		fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(reply)))
	}
	return c.Close()
}

// httpCmd is "pvtest http [-host H] <socket> <METHOD> <path> [body]": one
// raw request on the control socket, printed as "<status> <body>".
func httpCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	host := fs.String("host", "localhost", "Host header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) < 3 || len(a) > 4 {
		return errors.New("usage: pvtest http [-host H] <socket> <METHOD> <path> [body]")
	}
	var body io.Reader
	if len(a) == 4 {
		body = strings.NewReader(a[3])
	}
	req, err := http.NewRequestWithContext(ctx, a[1], "http://localhost"+a[2], body)
	if err != nil {
		return err
	}
	req.Host = *host
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a[0])
	}}}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(stdout, "error: connection closed")
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, strings.TrimSpace(string(b)))
	return nil
}
