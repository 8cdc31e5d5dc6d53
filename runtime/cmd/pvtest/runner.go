package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/appengine"
	"github.com/pantavisor/pantavisor-go/runtime/pvtest"
)

// errFailed: some test failed (already reported).
var errFailed = errors.New("tests failed")

// containerMu serialises the tests that run containers.
var containerMu sync.Mutex

// childCmd is the hidden command an isolated test child runs.
const childCmd = "_child"

type runFlags struct {
	selectors   []string
	interactive bool
	manual      bool
	overwrite   bool
	verbose     bool
	keep        bool
	factory     bool
	jobs        int
	pkg         string
}

// parseRunArgs accepts flags anywhere (upstream: run local:0 -i -m).
func parseRunArgs(args []string) (runFlags, error) {
	f := runFlags{jobs: 1}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-i":
			f.interactive = true
		case "-m":
			f.manual = true
		case "-o":
			f.overwrite = true
		case "-v":
			f.verbose = true
		case "-k":
			f.keep = true
		case "-factory":
			f.factory = true
		case "-j", "-package":
			if i+1 >= len(args) {
				return f, fmt.Errorf("%s needs a value", a)
			}
			i++
			if a == "-package" {
				f.pkg = args[i]
				break
			}
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 1 {
				return f, fmt.Errorf("-j %q: want a positive number", args[i])
			}
			f.jobs = n
		default:
			if strings.HasPrefix(a, "-") {
				return f, fmt.Errorf("unknown option %q (want -i, -m, -o, -v, -k, -j N, -package DIR, -factory)", a)
			}
			f.selectors = append(f.selectors, a)
		}
	}
	if (f.interactive || f.manual) && f.jobs > 1 {
		f.jobs = 1
	}
	return f, nil
}

type outcome struct {
	id       pvtest.ID
	status   string // PASS FAIL SKIP ERROR
	detail   string
	duration time.Duration
}

func runTests(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f, err := parseRunArgs(args)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("run needs root (loop devices, mounts, LXC)")
	}
	all, err := pvtest.Discover(suitesDir)
	if err != nil {
		return err
	}
	ids, err := pvtest.Select(all, f.selectors...)
	if err != nil {
		return err
	}
	if (f.interactive || f.manual) && len(ids) != 1 {
		return errors.New("-i and -m need exactly one test (group:n)")
	}
	// A test picked by number runs even when marked skip.
	single := map[pvtest.ID]bool{}
	for _, s := range f.selectors {
		if g, n, err := pvtest.ParseSelector(s); err == nil && n >= 0 {
			single[pvtest.ID{Group: g, N: n}] = true
		}
	}
	cache, err := filepath.Abs(filepath.Join(".cache", "pvtest"))
	if err != nil {
		return err
	}
	pkgDir := f.pkg
	if pkgDir == "" {
		pkgDir = filepath.Join(cache, "appengine-"+runtime.GOARCH)
		fmt.Fprintf(stderr, "pvtest: building the App Engine package in %s\n", pkgDir)
		if err := appengine.Assemble(ctx, appengine.Options{Repo: ".", Out: pkgDir}); err != nil {
			return err
		}
	}
	if pkgDir, err = filepath.Abs(pkgDir); err != nil {
		return err
	}
	tool, err := os.Executable()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pvtest-")
	if err != nil {
		return err
	}
	if f.keep {
		fmt.Fprintf(stderr, "pvtest: keeping instances under %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	xcserve := filepath.Join(work, "xcserve")
	if err := buildStatic(ctx, "./runtime/pvtest/xcserve", xcserve); err != nil {
		return err
	}
	fx := &pvtest.Fixtures{CacheDir: cache, Pvcontrol: filepath.Join(pkgDir, "bin", "pvcontrol"), PvrSDK: filepath.Join(pkgDir, "bin", "pvr-sdk"),
		XCServe: xcserve}
	fxDir := filepath.Join(work, "fixtures")
	if err := os.MkdirAll(fxDir, 0o755); err != nil {
		return err
	}
	for _, k := range pvtest.Kinds() {
		p, err := fx.Build(k)
		if err != nil {
			return err
		}
		if err := os.Symlink(p, filepath.Join(fxDir, k+".tgz")); err != nil {
			return err
		}
	}

	start := time.Now()
	outcomes := make([]outcome, len(ids))
	var mu sync.Mutex
	sem := make(chan struct{}, f.jobs)
	var wg sync.WaitGroup
	for i, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := runOne(ctx, id, f, single[id], pkgDir, tool, work, fx, fxDir, stdin, stderr)
			mu.Lock()
			outcomes[i] = o
			report(stdout, o)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summary(stdout, outcomes, time.Since(start))
}

func report(w io.Writer, o outcome) {
	fmt.Fprintf(w, "%-5s %-14s %6.1fs\n", o.status, o.id, o.duration.Seconds())
	if o.detail != "" {
		for _, l := range strings.Split(strings.TrimRight(o.detail, "\n"), "\n") {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}

func summary(w io.Writer, outs []outcome, total time.Duration) error {
	counts := map[string]int{}
	var ran []outcome
	for _, o := range outs {
		if o.status == "" {
			continue
		}
		counts[o.status]++
		if o.status != "SKIP" {
			ran = append(ran, o)
		}
	}
	sort.Slice(ran, func(i, j int) bool { return ran[i].duration > ran[j].duration })
	fmt.Fprintf(w, "\n%d passed, %d failed, %d errors, %d skipped in %.1fs\n",
		counts["PASS"], counts["FAIL"], counts["ERROR"], counts["SKIP"], total.Seconds())
	if len(ran) > 1 {
		fmt.Fprint(w, "slowest:")
		for i := 0; i < len(ran) && i < 5; i++ {
			fmt.Fprintf(w, " %s %.1fs", ran[i].id, ran[i].duration.Seconds())
		}
		fmt.Fprintln(w)
	}
	if counts["FAIL"]+counts["ERROR"] > 0 {
		return errFailed
	}
	return nil
}

// runOne prepares the plan, runs the isolated child and judges the result.
func runOne(ctx context.Context, id pvtest.ID, f runFlags, single bool, pkgDir, tool, work string,
	fx *pvtest.Fixtures, fxDir string, stdin io.Reader, stderr io.Writer) outcome {
	o := outcome{id: id}
	dir, _ := filepath.Abs(filepath.Join(suitesDir, id.Path()))
	data, err := os.ReadFile(filepath.Join(dir, "test.json"))
	if err != nil {
		return outcome{id: id, status: "ERROR", detail: err.Error()}
	}
	t, err := pvtest.Parse(data)
	if err != nil {
		return outcome{id: id, status: "ERROR", detail: err.Error()}
	}
	if t.Skip && !single {
		o.status, o.detail = "SKIP", t.Description
		return o
	}
	plan := pvtest.Plan{ID: id, TestDir: dir, Test: t, Package: pkgDir, WorkDir: work, Tool: tool, Fixtures: fxDir,
		Interactive: f.interactive, Manual: f.manual, Keep: f.keep, Verbose: f.verbose, Factory: f.factory || t.Setup.Factory}
	for _, tb := range t.Setup.Containers.Tarballs {
		if k, ok := strings.CutPrefix(tb, "builtin:"); ok {
			p, err := fx.Build(k)
			if err != nil {
				return outcome{id: id, status: "ERROR", detail: err.Error()}
			}
			plan.Tarballs = append(plan.Tarballs, p)
			continue
		}
		plan.Tarballs = append(plan.Tarballs, filepath.Join(dir, tb))
	}
	if len(plan.Tarballs) > 0 {
		// LXC names its cgroups after the container (lxc/<name>,
		// lxc.monitor/<name>) host-wide: two instances running a container
		// of the same name collide, so tests with containers run one at a
		// time even with -j.
		containerMu.Lock()
		defer containerMu.Unlock()
	}
	res, err := spawn(ctx, plan, stdin, stderr)
	o.duration = res.Duration
	if err != nil {
		o.status, o.detail = "ERROR", err.Error()
		return o
	}
	if res.Error != "" {
		o.status = "ERROR"
		o.detail = res.Error
		if res.Log != "" {
			o.detail += "\n--- App Engine log (tail) ---\n" + res.Log
		}
		return o
	}
	if f.interactive || f.manual {
		o.status = "DONE"
		return o
	}
	golden := filepath.Join(dir, "output")
	if f.overwrite {
		if err := os.WriteFile(golden, res.Stdout, 0o644); err != nil {
			o.status, o.detail = "ERROR", err.Error()
			return o
		}
		o.status, o.detail = "PASS", "output rewritten"
		return o
	}
	want, err := os.ReadFile(golden)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		o.status, o.detail = "ERROR", err.Error()
		return o
	}
	if d := pvtest.Unified(filepath.Join(suitesDir, id.Path(), "output"), "stdout of "+t.Script, want, res.Stdout); d != "" {
		o.status = "FAIL"
		o.detail = d
		if len(res.Stderr) > 0 {
			o.detail += "--- stderr ---\n" + tail(string(res.Stderr), 3000)
		}
		if err != nil {
			o.detail += "(no golden output file: record one with -o)\n"
		}
		return o
	}
	o.status = "PASS"
	if t.Skip {
		o.detail = "(marked skip, run because picked by number)"
	}
	return o
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// spawn runs "pvtest _child plan result" in a new mount namespace.
func spawn(ctx context.Context, plan pvtest.Plan, stdin io.Reader, stderr io.Writer) (pvtest.Result, error) {
	var res pvtest.Result
	dir, err := os.MkdirTemp(plan.WorkDir, "plan-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	pf, rf := filepath.Join(dir, "plan.json"), filepath.Join(dir, "result.json")
	b, err := json.Marshal(plan)
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(pf, b, 0o644); err != nil {
		return res, err
	}
	cmd := exec.Command(plan.Tool, childCmd, pf, rf)
	cmd.SysProcAttr = pvtest.IsolateAttr(plan.Test.Setup.NetNS)
	cmd.Stderr = stderr
	if plan.Interactive || plan.Manual {
		cmd.Stdin, cmd.Stdout = stdin, os.Stdout
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start test child: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Signal(os.Interrupt)
		err = <-done
	}
	rb, rerr := os.ReadFile(rf)
	if rerr != nil {
		return res, fmt.Errorf("test child: %v (no result: %v)", err, rerr)
	}
	if err := json.Unmarshal(rb, &res); err != nil {
		return res, fmt.Errorf("test child result: %w", err)
	}
	return res, nil
}

// child is the isolated side: it runs one plan and writes the result.
func child(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: pvtest _child <plan.json> <result.json>")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var plan pvtest.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return err
	}
	var res pvtest.Result
	if err := pvtest.Isolate(); err != nil {
		res.Error = err.Error()
	} else {
		res = pvtest.Run(ctx, plan, pvtest.Shell{Stdin: stdin, Stdout: stdout, Stderr: stderr}, slog.New(slog.NewTextHandler(stderr, nil)))
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(args[1], out, 0o644)
}

// buildStatic builds the Go program pkg of this checkout (the runner's
// working directory) as a static binary at dst.
func buildStatic(ctx context.Context, pkg, dst string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dst, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, out)
	}
	return nil
}
