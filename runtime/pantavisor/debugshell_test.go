package pantavisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// console is the master side of a pseudo terminal standing in for the
// device's serial console.
type console struct {
	master, slave *os.File
	path          string
	mu            sync.Mutex
	out           bytes.Buffer
}

func newConsole(t *testing.T) *console {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		testenv.Skipf(t, "no pseudo terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	c := &console{master: os.NewFile(uintptr(fd), "ptmx"), path: fmt.Sprintf("/dev/pts/%d", n)}
	if c.slave, err = os.OpenFile(c.path, os.O_RDWR|unix.O_NOCTTY, 0); err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.master.Read(b)
			c.mu.Lock()
			c.out.Write(b[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.slave.Close(); c.master.Close() })
	return c
}

func (c *console) waitFor(t *testing.T, s string) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		ok := strings.Contains(c.out.String(), s)
		c.mu.Unlock()
		if ok {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("console never printed %q:\n%s", s, c.out.String())
}

// seatShell offers the debug shell on a pty, with busybox sh, as if this
// test were the embedded PID 1.
func seatShell(t *testing.T) *console {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "no busybox (scripts/install-deps.sh installs busybox-static)")
	}
	sh := filepath.Join(t.TempDir(), "sh")
	if err := os.Symlink(bb, sh); err != nil {
		t.Fatal(err)
	}
	c := newConsole(t)
	old := shellSeat
	shellSeat.pid1 = func() bool { return true }
	shellSeat.console, shellSeat.shell = c.path, sh
	t.Cleanup(func() { shellSeat = old })
	return c
}

// rebootRecorder is Options.SystemReboot.
type rebootRecorder struct {
	mu    sync.Mutex
	calls []bool // poweroff per call
}

func (r *rebootRecorder) reboot(poweroff bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, poweroff)
	return nil
}

func (r *rebootRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func startEmbedded(t *testing.T, rr *rebootRecorder, env ...string) *instance {
	t.Helper()
	return start(t, newStorage(t), func(o *Options) {
		o.Cmdline = "pv_rev=0 pv_embedded"
		o.Env = append(o.Env, env...)
		o.SystemReboot = rr.reboot
	})
}

func (in *instance) debugShellLocks(t *testing.T) int {
	t.Helper()
	code, b := in.call(t, "GET", "/wakelocks", nil)
	var w ctrl.Wakelocks
	if err := json.Unmarshal(b, &w); code != 200 || err != nil {
		t.Fatalf("GET /wakelocks = %d %s (%v)", code, b, err)
	}
	return w.Held.DebugShell
}

func (in *instance) command(t *testing.T, op string) int {
	t.Helper()
	code, _ := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"`+op+`","payload":""}`))
	return code
}

// TestDebugShellHoldsReboot: with an open debug shell (autologin) a
// REBOOT_DEVICE waits in BLOCK_REBOOT, the debug_shell wakelock is held
// and DEFER_REBOOT is accepted; exiting the shell lets the reboot go on.
func TestDebugShellHoldsReboot(t *testing.T) {
	con := seatShell(t)
	rr := &rebootRecorder{}
	in := startEmbedded(t, rr, "PV_DEBUG_SHELL_AUTOLOGIN=1", "PV_DEBUG_SHELL_TIMEOUT=0")
	con.waitFor(t, debugshell.OpenedLine)
	for !in.d.debugShellOpen() {
		time.Sleep(5 * time.Millisecond)
	}
	if got := in.debugShellLocks(t); got != 1 {
		t.Errorf("wakelocks held.debug_shell = %d, want 1", got)
	}
	if got := in.command(t, "DEFER_REBOOT"); got != 200 {
		t.Errorf("DEFER_REBOOT with a shell open = %d, want 200", got)
	}
	if got := in.command(t, "REBOOT_DEVICE"); got != 200 {
		t.Fatalf("REBOOT_DEVICE = %d", got)
	}
	con.waitFor(t, "debug shell: reboot pending")
	// The hold is entered before finish: nothing rebooted yet.
	if got, n := in.d.State(), rr.count(); got != StateBlockReboot || n != 0 {
		t.Fatalf("with the shell open: state %s, %d reboots; want BLOCK_REBOOT, 0", got, n)
	}
	con.master.WriteString("echo held-$((40+2))\n")
	con.waitFor(t, "held-42")
	con.master.WriteString("exit\n")
	if exit := in.wait(t); exit != ExitReboot {
		t.Errorf("exit = %d, want reboot", exit)
	}
	if rr.count() != 1 || rr.calls[0] {
		t.Errorf("SystemReboot calls = %v, want one reboot", rr.calls)
	}
}

// TestDebugShellTimeout: PV_DEBUG_SHELL_TIMEOUT bounds the hold; the shell
// is hung up and the poweroff goes on.
func TestDebugShellTimeout(t *testing.T) {
	con := seatShell(t)
	rr := &rebootRecorder{}
	in := startEmbedded(t, rr, "PV_DEBUG_SHELL_AUTOLOGIN=1", "PV_DEBUG_SHELL_TIMEOUT=1")
	con.waitFor(t, debugshell.OpenedLine)
	for !in.d.debugShellOpen() {
		time.Sleep(5 * time.Millisecond)
	}
	if got := in.command(t, "POWEROFF_DEVICE"); got != 200 {
		t.Fatalf("POWEROFF_DEVICE = %d", got)
	}
	if exit := in.wait(t); exit != ExitPoweroff {
		t.Errorf("exit = %d, want poweroff", exit)
	}
	con.waitFor(t, "debug shell: poweroff: waited 1s, closing the shell")
	if in.d.debugShellOpen() {
		t.Error("shell still open after the hold timed out")
	}
	if rr.count() != 1 || !rr.calls[0] {
		t.Errorf("SystemReboot calls = %v, want one poweroff", rr.calls)
	}
}

// TestDebugShellNotOpen: during the countdown nothing is held: DEFER_REBOOT
// is 409, no wakelock, and a reboot goes through.
func TestDebugShellNotOpen(t *testing.T) {
	con := seatShell(t)
	rr := &rebootRecorder{}
	in := startEmbedded(t, rr)
	con.waitFor(t, debugshell.Prompt)
	if got := in.debugShellLocks(t); got != 0 {
		t.Errorf("wakelocks held.debug_shell = %d, want 0", got)
	}
	if got := in.command(t, "DEFER_REBOOT"); got != 409 {
		t.Errorf("DEFER_REBOOT without a shell = %d, want 409", got)
	}
	if got := in.command(t, "REBOOT_DEVICE"); got != 200 {
		t.Fatalf("REBOOT_DEVICE = %d", got)
	}
	if exit := in.wait(t); exit != ExitReboot || rr.count() != 1 {
		t.Errorf("exit = %d with %d reboots, want reboot once", exit, rr.count())
	}
}

// TestDebugShellOff: PV_DEBUG_SHELL=0 offers nothing.
func TestDebugShellOff(t *testing.T) {
	seatShell(t)
	in := startEmbedded(t, &rebootRecorder{}, "PV_DEBUG_SHELL=0")
	if in.d.shell != nil {
		t.Error("debug shell offered with PV_DEBUG_SHELL=0")
	}
}

// TestDebugShellFailedInit: INIT fails (storage not found) and PID 1 would
// end, a kernel panic; with the debug shell open it waits for the shell.
func TestDebugShellFailedInit(t *testing.T) {
	con := seatShell(t)
	storage := newStorage(t)
	notFound := errors.New("storage LABEL=root: storage device not found")
	d, err := New(Options{Cmdline: "pv_rev=0 pv_embedded",
		Env: []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run"),
			"PV_DEBUG_SHELL_AUTOLOGIN=1", "PV_DEBUG_SHELL_TIMEOUT=0"},
		Prepare: func(context.Context, Mode, func(config.Key) string) error { return notFound }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the offer of another shell
	done := make(chan error, 1)
	go func() { _, err := d.Run(ctx); done <- err }()
	con.waitFor(t, "debug shell: reboot pending")
	select {
	case err := <-done:
		t.Fatalf("Run returned with the shell open: %v", err)
	default:
	}
	con.master.WriteString("exit\n")
	select {
	case err := <-done:
		if !errors.Is(err, notFound) {
			t.Errorf("Run = %v, want %v", err, notFound)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the shell exited")
	}
}
