// Package debugshell offers upstream Pantavisor's debug shell on the
// system console. Beside the boot it counts down
//
//	Press [d] for debug ash shell... 5
//
// reading single keys from the console (non-canonical, no echo, restored
// afterwards); on "d", or at once with autologin, it starts the shell as a
// session leader with the console as its controlling terminal. Once a shell
// was closed, "d" opens another one (the countdown itself runs once per
// boot). Whoever decides on reboots asks Open and waits on Idle: upstream
// holds reboots and poweroffs while the shell is open.
//
//	sh, err := debugshell.Start(ctx, debugshell.Options{Autologin: false, Log: log})
//	if errors.Is(err, debugshell.ErrNoShell) { … } // no /bin/sh: nothing offered
//	…
//	if sh.Open() { <-sh.Idle() }
package debugshell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Prompt is upstream's countdown text; the seconds left follow it.
const Prompt = "Press [d] for debug ash shell... "

// Console lines around a shell session.
const (
	OpenedLine = "debug shell opened: reboot and poweroff wait until it is closed (exit or Ctrl-D)"
	ClosedLine = "debug shell closed"
	// AgainHint follows ClosedLine while another shell is offered.
	AgainHint = ": press [d] to open it again"
)

// ErrNoShell means the shell binary is missing (the debug addon is not in
// the initrd): nothing is offered.
var ErrNoShell = errors.New("debug shell: no shell")

// DefaultShell is the busybox shell of the debug addon.
const DefaultShell = "/bin/sh"

// DefaultEnv is the shell's environment unless Options.Env is set.
var DefaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/",
	"TERM=linux",
	"SHELL=/bin/sh",
	"USER=root",
	"LOGNAME=root",
}

// Options configure Start.
type Options struct {
	// Console is the terminal to offer the shell on; "" is the kernel's
	// primary console (PrimaryConsole).
	Console string
	// Shell defaults to DefaultShell.
	Shell string
	// Args are the shell's arguments (none by default).
	Args []string
	// Countdown is the number of steps "d" is waited for (default 5).
	Countdown int
	// Step is one countdown step (default 1 s; tests shorten it).
	Step time.Duration
	// Autologin opens the shell at once, without the countdown.
	Autologin bool
	// Env defaults to DefaultEnv.
	Env []string
	Log *slog.Logger
}

// Shell is the debug shell offered on one console.
type Shell struct {
	o    Options
	stop context.CancelFunc // ends the offer

	mu   sync.Mutex
	con  *os.File      // the console the prompt reads and writes
	proc *os.Process   // the running shell, nil when closed
	idle chan struct{} // closed while no shell is open
	done chan struct{} // closed when the offer loop returned

	decided     chan struct{} // closed once the countdown is over
	decidedOnce sync.Once
}

// Start checks the shell and the console and offers the shell beside the
// caller: it returns at once. Cancelling ctx stops offering (an open shell
// keeps running until Close).
func Start(ctx context.Context, o Options) (*Shell, error) {
	if o.Shell == "" {
		o.Shell = DefaultShell
	}
	if o.Countdown <= 0 {
		o.Countdown = 5
	}
	if o.Step <= 0 {
		o.Step = time.Second
	}
	if o.Env == nil {
		o.Env = DefaultEnv
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Stat(o.Shell); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoShell, o.Shell)
	}
	if o.Console == "" {
		o.Console = PrimaryConsole()
	}
	con, err := openTTY(o.Console)
	if err != nil {
		return nil, fmt.Errorf("debug shell: console: %w", err)
	}
	s := &Shell{o: o, con: con, idle: make(chan struct{}), done: make(chan struct{}), decided: make(chan struct{})}
	close(s.idle)
	ctx, s.stop = context.WithCancel(ctx)
	go s.offer(ctx)
	return s, nil
}

// openTTY opens a terminal for blocking reads and writes without making it
// the caller's controlling terminal.
func openTTY(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// PrimaryConsole is the device behind /dev/console: the last name the
// kernel lists in /sys/class/tty/console/active (busybox cttyhack does the
// same). A terminal opened by its own name can be a controlling terminal,
// /dev/console cannot always; "/dev/console" when it is unknown.
func PrimaryConsole() string {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	if err != nil {
		return "/dev/console"
	}
	name := ActiveConsole(string(b))
	if name == "" {
		return "/dev/console"
	}
	p := filepath.Join("/dev", name)
	if _, err := os.Stat(p); err != nil {
		return "/dev/console"
	}
	return p
}

// ActiveConsole parses /sys/class/tty/console/active ("tty0 ttyS0\n"):
// the last name is the primary console. A name that is not a plain device
// name gives "".
func ActiveConsole(active string) string {
	f := strings.Fields(active)
	if len(f) == 0 {
		return ""
	}
	name := f[len(f)-1]
	if name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return ""
	}
	return name
}

// Console returns the terminal the shell is offered on.
func (s *Shell) Console() string { return s.o.Console }

// Open reports whether a shell is running.
func (s *Shell) Open() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Idle is closed while no shell is open: a reboot waits on it.
func (s *Shell) Idle() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idle
}

// Decided is closed once the countdown is over: the first shell opened
// (Open is true from then until it exits), or nobody pressed "d" in time.
// Whoever is about to reboot in the first seconds waits on it, so that a
// shell being asked for is not cut off.
func (s *Shell) Decided() <-chan struct{} { return s.decided }

func (s *Shell) decide() { s.decidedOnce.Do(func() { close(s.decided) }) }

// Done is closed once the shell is no longer offered (the countdown ran
// out, or ctx was cancelled) and no shell is open.
func (s *Shell) Done() <-chan struct{} { return s.done }

// Stop ends the offer: no countdown, no next shell. An open shell stays
// until it exits (or Close).
func (s *Shell) Stop() { s.stop() }

// Say prints a line on the console.
func (s *Shell) Say(format string, args ...any) {
	s.mu.Lock()
	con := s.con
	s.mu.Unlock()
	fmt.Fprintf(con, "\r\n"+format+"\r\n", args...)
}

// reopen opens the console again: when a session leader whose controlling
// terminal is a real (non-pty) terminal exits, the kernel hangs that
// terminal up, and every open file of it reads EOF and fails to write from
// then on (/dev/console itself is spared).
func (s *Shell) reopen() error {
	con, err := openTTY(s.o.Console)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.con
	s.con = con
	s.mu.Unlock()
	return old.Close()
}

// Close hangs up an open shell (SIGHUP to its process group, SIGKILL after
// grace) and waits until it is gone or grace ran out twice.
func (s *Shell) Close(grace time.Duration) {
	s.mu.Lock()
	p, idle := s.proc, s.idle
	s.mu.Unlock()
	if p == nil {
		return
	}
	unix.Kill(-p.Pid, unix.SIGHUP)
	p.Signal(syscall.SIGHUP)
	select {
	case <-idle:
		return
	case <-time.After(grace):
	}
	unix.Kill(-p.Pid, unix.SIGKILL)
	p.Kill()
	select {
	case <-idle:
	case <-time.After(grace):
	}
}

// offer runs the countdown, then a shell per "d" once one was closed.
func (s *Shell) offer(ctx context.Context) {
	defer close(s.done)
	defer s.decide()                 // the shell did not start, or ctx ended first
	defer func() { s.con.Close() }() // the last one reopen made
	open := s.o.Autologin
	if !open {
		open = s.countdown(ctx)
	}
	if !open {
		s.decide()
	}
	for open && ctx.Err() == nil {
		s.session()
		if err := s.reopen(); err != nil {
			s.o.Log.Warn("debug shell: console", "err", err)
			return
		}
		if ctx.Err() != nil {
			s.Say("%s", ClosedLine)
			return
		}
		s.Say("%s%s", ClosedLine, AgainHint)
		open = s.waitKey(ctx, 0)
	}
}

// countdown prints the prompt with the steps left and waits for "d".
func (s *Shell) countdown(ctx context.Context) bool {
	restore := s.raw()
	defer restore()
	for n := s.o.Countdown; n > 0; n-- {
		fmt.Fprintf(s.con, "\r%s%d ", Prompt, n)
		if s.waitKey(ctx, s.o.Step) {
			fmt.Fprint(s.con, "d\r\n")
			return true
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprint(s.con, "\r\n")
	return false
}

// waitKey waits up to d (0: until ctx ends) for a "d" on the console;
// other keys are swallowed.
func (s *Shell) waitKey(ctx context.Context, d time.Duration) bool {
	restore := s.raw()
	defer restore()
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	buf := make([]byte, 64)
	for ctx.Err() == nil {
		wait := 200 * time.Millisecond // ctx is looked at between polls
		if d > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			wait = min(wait, left)
		}
		fds := []unix.PollFd{{Fd: int32(s.con.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			s.o.Log.Warn("debug shell: console", "err", err)
			return false
		}
		if n == 0 {
			continue
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLIN == 0 {
			return false // the console went away
		}
		k, err := s.con.Read(buf)
		if err != nil {
			return false
		}
		if strings.IndexByte(string(buf[:k]), 'd') >= 0 {
			return true
		}
	}
	return false
}

// raw puts the console in non-canonical mode without echo (one key is one
// read) and returns the function that restores it; not a terminal: no-op.
func (s *Shell) raw() func() {
	fd := int(s.con.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

// session runs one shell on the console and returns when it exited. A
// shell that cannot start counts as decided too: a reboot waiting for the
// decision must not wait forever.
func (s *Shell) session() {
	defer s.decide()
	tty, err := openTTY(s.o.Console)
	if err != nil {
		s.o.Log.Error("debug shell", "err", err)
		return
	}
	defer tty.Close()
	cmd := exec.Command(s.o.Shell, s.o.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Dir = "/"
	cmd.Env = s.o.Env
	// A session of its own with the console as controlling terminal (fd 0
	// of the child): job control and Ctrl-C work, and never reach PID 1.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s.mu.Lock()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.o.Log.Error("debug shell", "err", err)
		return
	}
	s.proc, s.idle = cmd.Process, make(chan struct{})
	s.mu.Unlock()
	fmt.Fprintf(s.con, "\r\n%s\r\n", OpenedLine)
	s.decide()
	s.o.Log.Info("debug shell started", "console", s.o.Console, "pid", cmd.Process.Pid)
	// An init's reaper may collect the shell first: any return means gone.
	err = cmd.Wait()
	s.mu.Lock()
	s.proc = nil
	close(s.idle)
	s.mu.Unlock()
	s.o.Log.Info("debug shell exited", "err", err)
}
