package debugshell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// pty is a pseudo terminal pair: the test types on the master side, the
// shell's console is the slave.
type pty struct {
	master *os.File
	slave  *os.File // kept open so the master never sees a hang-up
	path   string

	mu  sync.Mutex
	out bytes.Buffer
}

// newPTY opens /dev/ptmx, unlocks its slave and collects what the slave
// side prints.
func newPTY(t *testing.T) *pty {
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
	p := &pty{master: os.NewFile(uintptr(fd), "ptmx"), path: fmt.Sprintf("/dev/pts/%d", n)}
	if p.slave, err = openTTY(p.path); err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := p.master.Read(b)
			p.mu.Lock()
			p.out.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { p.slave.Close(); p.master.Close() })
	return p
}

func (p *pty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the console printed s (generous limit: a loaded
// builder is slow; nothing is timed).
func (p *pty) waitFor(t *testing.T, s string) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(p.output(), s) {
			return
		}
	}
	t.Fatalf("console never printed %q; it printed:\n%s", s, p.output())
}

// waitCount waits until the console printed s n times.
func (p *pty) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if strings.Count(p.output(), s) >= n {
			return
		}
	}
	t.Fatalf("console printed %q fewer than %d times:\n%s", s, n, p.output())
}

func (p *pty) typeKeys(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// canonical reports whether the slave is in canonical mode with echo.
func (p *pty) canonical(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}

// busyboxSh links sh to the busybox of the debug addon (Debian's
// busybox-static on the builder).
func busyboxSh(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "no busybox (scripts/install-deps.sh installs busybox-static)")
	}
	sh := filepath.Join(t.TempDir(), "sh")
	if err := os.Symlink(bb, sh); err != nil {
		t.Fatal(err)
	}
	return sh
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not closed", what)
	}
}

// TestPressD types "d" during the countdown, runs a command in the shell,
// exits it, and opens a second shell with "d" afterwards.
func TestPressD(t *testing.T) {
	p := newPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A long countdown of short steps: the test types once it sees the
	// prompt, however slow the machine.
	s, err := Start(ctx, Options{Console: p.path, Shell: busyboxSh(t), Countdown: 600, Step: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, Prompt+"600 ")
	if s.Open() {
		t.Fatal("Open() before d = true")
	}
	select {
	case <-s.Decided():
		t.Fatal("Decided() closed during the countdown")
	default:
	}
	p.typeKeys(t, "x") // other keys are swallowed
	p.typeKeys(t, "d")
	p.waitFor(t, OpenedLine)
	if !s.Open() {
		t.Error("Open() after d = false, want true")
	}
	waitClosed(t, s.Decided(), "Decided after d")
	select {
	case <-s.Idle():
		t.Error("Idle() closed while the shell is open")
	default:
	}
	p.typeKeys(t, "echo shell-$((6*7))\n")
	p.waitFor(t, "shell-42")
	p.typeKeys(t, "exit\n")
	waitClosed(t, s.Idle(), "Idle after exit")
	p.waitFor(t, ClosedLine+AgainHint)
	if s.Open() {
		t.Error("Open() after exit = true")
	}
	// Ctrl-D closes a second shell just as well.
	p.typeKeys(t, "d")
	p.waitCount(t, OpenedLine, 2)
	p.waitCount(t, "Enter 'help'", 2) // ash is up: its banner
	p.typeKeys(t, "\x04")
	waitClosed(t, s.Idle(), "Idle after Ctrl-D")
	p.waitCount(t, ClosedLine+AgainHint, 2)
	cancel()
	waitClosed(t, s.Done(), "Done after cancel")
	if !p.canonical(t) {
		t.Error("console not restored to canonical mode with echo")
	}
	if got := strings.Count(p.output(), OpenedLine); got != 2 {
		t.Errorf("shells opened = %d, want 2", got)
	}
}

// TestCountdownRunsOut: no key, no shell; the countdown reaches 1, the
// offer ends and the terminal is as it was.
func TestCountdownRunsOut(t *testing.T) {
	p := newPTY(t)
	s, err := Start(context.Background(), Options{Console: p.path, Shell: busyboxSh(t), Countdown: 3, Step: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s.Done(), "Done")
	waitClosed(t, s.Decided(), "Decided")
	p.waitFor(t, Prompt+"1 \r") // the master may lag behind; then the line ends
	out := p.output()
	for _, want := range []string{Prompt + "3 ", Prompt + "2 ", Prompt + "1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("console %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, OpenedLine) || s.Open() {
		t.Errorf("a shell opened without d: %q", out)
	}
	if !p.canonical(t) {
		t.Error("console not restored to canonical mode with echo")
	}
}

// TestAutologin opens the shell without a countdown; Close hangs it up.
func TestAutologin(t *testing.T) {
	p := newPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Options{Console: p.path, Shell: busyboxSh(t), Autologin: true})
	if err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, OpenedLine)
	for !s.Open() {
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Contains(p.output(), Prompt) {
		t.Errorf("autologin printed the countdown: %q", p.output())
	}
	p.typeKeys(t, "echo auto-$((1+1))\n")
	p.waitFor(t, "auto-2")
	s.Close(2 * time.Second)
	waitClosed(t, s.Idle(), "Idle after Close")
	cancel()
	waitClosed(t, s.Done(), "Done")
}

func TestNoShell(t *testing.T) {
	p := newPTY(t)
	for _, sh := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		if _, err := Start(context.Background(), Options{Console: p.path, Shell: sh}); !errors.Is(err, ErrNoShell) {
			t.Errorf("Start(Shell: %s) = %v, want ErrNoShell", sh, err)
		}
	}
}

func TestActiveConsole(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"tty0 ttyS0\n", "ttyS0"},
		{"ttyS0\n", "ttyS0"},
		{"ttyAMA0 tty1", "tty1"},
		{"", ""},
		{" \n", ""},
		{"tty0 ../sda", ""},
		{"..", ""},
	} {
		if got := ActiveConsole(tt.in); got != tt.want {
			t.Errorf("ActiveConsole(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzActiveConsole(f *testing.F) {
	for _, s := range []string{"tty0 ttyS0\n", "", "a/b", "..", "ttyS0\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := ActiveConsole(in)
		if strings.ContainsAny(got, "/\x00 \n\t") || got == "." || got == ".." {
			t.Errorf("ActiveConsole(%q) = %q: not a device name", in, got)
		}
	})
}

// TestStop: once the offer stops (a reboot is pending) the open shell
// stays; when it exits no other one is offered.
func TestStop(t *testing.T) {
	p := newPTY(t)
	s, err := Start(context.Background(), Options{Console: p.path, Shell: busyboxSh(t), Autologin: true})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s.Decided(), "Decided")
	s.Stop()
	if !s.Open() {
		t.Fatal("Stop closed the open shell")
	}
	p.waitFor(t, "Enter 'help'")
	p.typeKeys(t, "exit\n")
	waitClosed(t, s.Done(), "Done after exit")
	p.waitFor(t, ClosedLine)
	if strings.Contains(p.output(), AgainHint) {
		t.Errorf("another shell offered after Stop: %q", p.output())
	}
}

// TestShellFailsToStart: a /bin/sh that exists but cannot be executed
// (a damaged addon) still decides, so a reboot waiting on Decided goes on.
func TestShellFailsToStart(t *testing.T) {
	p := newPTY(t)
	bad := filepath.Join(t.TempDir(), "sh")
	if err := os.WriteFile(bad, []byte("\x7fELF garbage"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Options{Console: p.path, Shell: bad, Autologin: true})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s.Decided(), "Decided after a shell that failed to start")
	if strings.Contains(p.output(), OpenedLine) {
		t.Errorf("console says %q for a shell that did not start: %q", OpenedLine, p.output())
	}
	s.Stop()
	cancel()
	waitClosed(t, s.Done(), "Done")
}
