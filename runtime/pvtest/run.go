package pvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
	"golang.org/x/sys/unix"
)

// Plan is everything a test run needs; the runner resolves it (fixtures
// built, paths absolute) and hands it to the isolated child.
type Plan struct {
	ID       ID
	TestDir  string   // absolute tests/<group>/<n>
	Test     *Test    // parsed test.json
	Package  string   // App Engine package dir
	Tarballs []string // absolute export tarballs of the initial revision
	WorkDir  string   // parent of the instance dir
	Tool     string   // the pvtest binary
	Fixtures string   // dir of <kind>.tgz builtin fixtures ($PVTEST_FIXTURES)

	Interactive bool // -i: shell with the instance running instead of the script
	Manual      bool // -m: shell before Pantavisor starts
	Keep        bool // keep the instance dir
	Verbose     bool // copy the script's stderr through
	// Factory installs the containers in the factory revision 0 (through
	// pv-appengine's pvtx.d) instead of upstream's locals/<id> + LOCAL_RUN:
	// a development aid for runtimes without an updater.
	Factory bool

	ReadyTimeout  time.Duration // initial revision DONE/UPDATED (default 90 s)
	ScriptTimeout time.Duration // test-script (default 300 s)
}

// Result is the outcome of one run in the child.
type Result struct {
	Stdout   []byte        `json:"stdout"`
	Stderr   []byte        `json:"stderr"`
	Error    string        `json:"error,omitempty"` // setup or infrastructure failure
	Log      string        `json:"log,omitempty"`   // App Engine log tail on failure
	Notes    []string      `json:"notes,omitempty"` // cleanup notes
	Duration time.Duration `json:"duration"`
}

// Shell streams for -i and -m.
type Shell struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run runs one test in the calling process, which should be isolated
// (IsolateAttr + Isolate). It always cleans up.
func Run(ctx context.Context, p Plan, sh Shell, log *slog.Logger) (res Result) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p.ReadyTimeout == 0 {
		p.ReadyTimeout = 90 * time.Second
	}
	if p.ScriptTimeout == 0 {
		p.ScriptTimeout = 300 * time.Second
	}
	dir, err := os.MkdirTemp(p.WorkDir, strings.ReplaceAll(p.ID.String(), ":", "-")+"-")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	var in *Instance
	defer func() {
		if in != nil {
			if err := in.Stop(15 * time.Second); err != nil {
				res.Notes = append(res.Notes, err.Error())
			}
			if res.Error != "" {
				res.Log = in.LogTail(6000)
			}
		}
		res.Notes = append(res.Notes, Cleanup(dir, p.Keep)...)
		res.Duration = time.Since(start)
	}()
	if err := run(ctx, p, sh, dir, &in, &res); err != nil {
		res.Error = err.Error()
	}
	return res
}

func run(ctx context.Context, p Plan, sh Shell, dir string, inp **Instance, res *Result) error {
	t := p.Test
	if len(t.Setup.Containers.URLs) > 0 {
		return fmt.Errorf("setup.containers.urls %q need the network to be cloned, which the framework does not do: "+
			"export them with pvr into a tarball next to test.json and list it in setup.containers.tarballs", t.Setup.Containers.URLs)
	}
	if t.Setup.PVS != "" {
		return fmt.Errorf("setup.pvs %q: secureboot key tarballs are not supported yet (the App Engine config disables secureboot)", t.Setup.PVS)
	}
	if t.Setup.NetNS {
		if err := isolateNet(dir); err != nil {
			return err
		}
	}
	var conf []byte
	if t.Setup.Config != "" {
		b, err := os.ReadFile(filepath.Join(p.TestDir, t.Setup.Config))
		if err != nil {
			return fmt.Errorf("setup.pantavisor.config: %w", err)
		}
		// @TESTDIR@ lets a config point at files shipped with the test.
		conf = []byte(strings.ReplaceAll(string(b), "@TESTDIR@", p.TestDir))
	}
	in, err := NewInstance(dir, p.Package, conf, t.Setup.Cmdline)
	if err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	in.Tool, in.Fixtures = p.Tool, p.Fixtures
	*inp = in
	if z := t.Setup.StorageSize; z != "" {
		// The runner's mount namespace is private: the tmpfs is the
		// instance's alone, and Cleanup unmounts it.
		if err := unix.Mount("tmpfs", in.Storage, "tmpfs", 0, "mode=0755,size="+z); err != nil {
			return fmt.Errorf("setup.storage-size: tmpfs on %s: %w", in.Storage, err)
		}
	}
	if p.Manual {
		fmt.Fprintf(sh.Stderr, "pvtest: %s: instance in %s; Pantavisor not started (run pv_start)\n", p.ID, in.Dir)
		return shell(ctx, in, p, sh)
	}
	if p.Factory {
		for i, tb := range p.Tarballs {
			dst := filepath.Join(in.Prefix, "lib", "pantavisor", "pvtx.d", fmt.Sprintf("%02d-%s", 10+i, filepath.Base(tb)))
			// pv-appengine only adds regular files: copy, do not link.
			if err := copyFile(tb, dst); err != nil {
				return err
			}
		}
	}
	if err := in.Start(); err != nil {
		return err
	}
	if err := waitReady(ctx, in, 60*time.Second); err != nil {
		return fmt.Errorf("first boot: %w", err)
	}
	if p.Test.Setup.ReadyScript != "" {
		var out, errb bytes.Buffer
		if err := script(ctx, in, p, filepath.Join(p.TestDir, t.Setup.ReadyScript), nil, &out, &errb, p.ReadyTimeout); err != nil {
			return fmt.Errorf("ready-script: %w: %s%s", err, out.String(), errb.String())
		}
	}
	if err := initialRevision(ctx, in, p); err != nil {
		return err
	}
	if p.Interactive {
		fmt.Fprintf(sh.Stderr, "pvtest: %s: instance ready in %s; helpers loaded (pvcontrol, pventer, pv_reboot, …); exit to stop\n", p.ID, in.Dir)
		return shell(ctx, in, p, sh)
	}
	var out, errb bytes.Buffer
	var errw io.Writer = &errb
	if p.Verbose {
		errw = io.MultiWriter(&errb, sh.Stderr)
	}
	err = script(ctx, in, p, filepath.Join(p.TestDir, t.Script), nil, &out, errw, p.ScriptTimeout)
	res.Stdout, res.Stderr = out.Bytes(), errb.Bytes()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// A failing script is judged by its output, like upstream; the
		// status is recorded on stderr for the report.
		res.Stderr = append(res.Stderr, fmt.Sprintf("pvtest: test-script exited with status %d\n", ee.ExitCode())...)
		return nil
	}
	return err
}

// waitReady polls the control socket until the running revision is READY
// (devmeta pantavisor.status, spec §7) and the daemon's FSM waits
// (pantavisor.state).
func waitReady(ctx context.Context, in *Instance, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	var last string
	for {
		out, err := exec.CommandContext(ctx, in.Bin("pvcontrol"), "-s", in.Socket, "devmeta", "ls").Output()
		if err == nil && bytes.Contains(out, []byte(`"pantavisor.status":"READY"`)) &&
			bytes.Contains(out, []byte(`"pantavisor.state":"WAIT"`)) {
			return nil
		}
		if err != nil {
			last = err.Error()
		}
		if !in.Running() {
			return errors.New("pv-appengine exited")
		}
		if time.Now().After(end) {
			return fmt.Errorf("pantavisor not ready after %s (last: %s)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// initialRevision installs the test's containers as upstream pvtest does:
// pvtx begin empty, add the tarballs, commit locals/<id>, LOCAL_RUN it and
// wait for DONE or UPDATED. Without containers the factory revision (0),
// committed by the daemon itself, is the initial one.
func initialRevision(ctx context.Context, in *Instance, p Plan) error {
	if len(p.Tarballs) == 0 {
		return waitProgress(ctx, in, "0", p.ReadyTimeout)
	}
	if p.Factory {
		if err := waitProgress(ctx, in, "0", p.ReadyTimeout); err != nil {
			return err
		}
		return waitContainers(ctx, in, p.ReadyTimeout)
	}
	rev := p.ID.Rev()
	steps := [][]string{{"pvtx", "begin", "empty"}}
	for _, tb := range p.Tarballs {
		steps = append(steps, []string{"pvtx", "add", tb})
	}
	steps = append(steps, []string{"pvtx", "commit", rev}, []string{"pvcontrol", "-s", in.Socket, "cmd", "run", rev})
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, in.Bin(s[0]), s[1:]...)
		cmd.Env = in.Env("PVTXDIR="+filepath.Join(in.Dir, "pvtx"), "PVCONTROL_SOCKET="+in.Socket)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("initial revision %s: %s: %w: %s", rev, strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	if err := waitProgress(ctx, in, rev, p.ReadyTimeout); err != nil {
		return err
	}
	return waitContainers(ctx, in, p.ReadyTimeout)
}

// waitContainers waits until every container reached its status goal
// (MOUNTED, STARTED or READY; STARTED also satisfies nothing more).
func waitContainers(ctx context.Context, in *Instance, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	c := client.New(in.Socket)
	var last string
	for {
		var list []struct {
			Name       string `json:"name"`
			Status     string `json:"status"`
			StatusGoal string `json:"status_goal"`
		}
		err := c.JSON(ctx, "GET", "/containers", nil, &list)
		if err == nil {
			pending := []string{}
			for _, ct := range list {
				goal := ct.StatusGoal
				if goal == "" {
					goal = "STARTED"
				}
				ok := ct.Status == goal || (goal == "STARTED" && ct.Status == "READY")
				if !ok {
					pending = append(pending, ct.Name+"="+ct.Status+" (goal "+goal+")")
				}
			}
			if len(pending) == 0 {
				return nil
			}
			last = strings.Join(pending, ", ")
		} else {
			last = err.Error()
		}
		if time.Now().After(end) {
			return fmt.Errorf("containers did not reach their goals after %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitProgress waits for rev's progress to reach DONE or UPDATED.
func waitProgress(ctx context.Context, in *Instance, rev string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	path := filepath.Join(in.Storage, "trails", rev, ".pv", "progress")
	var last string
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			last = strings.TrimSpace(string(b))
			if strings.Contains(last, `"status":"DONE"`) || strings.Contains(last, `"status":"UPDATED"`) {
				return waitReady(ctx, in, time.Until(end)+time.Second)
			}
			if strings.Contains(last, `"status":"ERROR"`) || strings.Contains(last, `"status":"WONTGO"`) {
				return fmt.Errorf("initial revision %s failed: %s", rev, last)
			}
		}
		if !in.Running() {
			return fmt.Errorf("initial revision %s: pv-appengine exited (progress %s)", rev, last)
		}
		if time.Now().After(end) {
			return fmt.Errorf("initial revision %s not DONE/UPDATED after %s (progress %s)", rev, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// script runs a POSIX sh script with the helpers sourced first, in the
// test directory, killing its process group at the timeout.
func script(ctx context.Context, in *Instance, p Plan, path string, stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	cmd := exec.Command("/bin/sh", "-c", `. "$PVTEST_HELPERS" || exit 99; . "$0"`, path)
	cmd.Dir = p.TestDir
	cmd.Env = in.Env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Background jobs left by the script keep its output pipes open: stop
	// waiting for them shortly after the shell itself exits.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftover background jobs
		if errors.Is(err, exec.ErrWaitDelay) {
			err = nil
		}
		return err
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s: timed out after %s", filepath.Base(path), timeout)
}

// shell opens an interactive sh with the helpers (through $ENV).
func shell(ctx context.Context, in *Instance, p Plan, sh Shell) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-i")
	cmd.Dir = p.TestDir
	cmd.Env = in.Env("PS1=pvtest:" + p.ID.String() + "# ")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sh.Stdin, sh.Stdout, sh.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
