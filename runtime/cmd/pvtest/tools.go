package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	arch := fs.String("arch", "", "GOARCH (default: host)")
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
	return appengine.Assemble(ctx, appengine.Options{Repo: ".", Out: out, GOARCH: *arch, Log: log})
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

func unixSend(ctx context.Context, args []string, stdin io.Reader) error {
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
	// /proc/<peer pid>/cgroup, which is gone once the sender exits.
	time.Sleep(500 * time.Millisecond)
	return c.Close()
}
