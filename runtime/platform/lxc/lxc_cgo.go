//go:build cgo && linux

package lxc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"
)

// startMu serialises starts: the start helper is forked from this process,
// and a fork while another thread is inside liblxc could copy a held lock.
var startMu sync.Mutex

// startTimeout bounds how long the start helper may take.
const startTimeout = 60 * time.Second

// Container is a started platform container.
type Container struct {
	log     *slog.Logger
	spec    Spec
	c       *golxc.Container
	pid     int
	console *os.File
	done    chan struct{}
	// initfd is a pidfd of init for TakePidFd (nil once taken).
	initfd atomic.Pointer[os.File]

	stopOnce sync.Once
	stopErr  error
}

// prefixKeys are key families liblxc matches by prefix
// (lxc.cgroup.<controller>.<file>, lxc.net.<n>.<item>, …).
var prefixKeys = []string{"lxc.cgroup.", "lxc.cgroup2.", "lxc.net.", "lxc.prlimit.", "lxc.limit.", "lxc.sysctl.", "lxc.proc.", "lxc.hook.", "lxc.keyring."}

// Supported tells whether liblxc knows key (for ParseConf).
func Supported(key string) bool {
	if golxc.IsSupportedConfigItem(key) {
		return true
	}
	for _, p := range prefixKeys {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// Start loads spec.ConfigFile, applies what Pantavisor owns and starts the
// container daemonized. It returns once init runs; Pid is its host PID.
func Start(ctx context.Context, log *slog.Logger, spec Spec) (*Container, error) {
	if log == nil {
		log = slog.Default()
	}
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/\x00") || spec.Name == "." || spec.Name == ".." {
		return nil, fmt.Errorf("%w: bad container name %q", ErrStart, spec.Name)
	}
	if spec.LXCPath == "" {
		return nil, fmt.Errorf("%w %s: no lxcpath", ErrStart, spec.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(spec.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("%w %s: read config: %w", ErrStart, spec.Name, err)
	}
	own, err := ParseConf(data, Supported)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s: %w", ErrStart, spec.Name, spec.ConfigFile, err)
	}
	dir := filepath.Join(spec.LXCPath, spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrStart, spec.Name, err)
	}
	if spec.LogFile == "" {
		spec.LogFile = filepath.Join(dir, "lxc.log")
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogFile), 0o755); err != nil {
		return nil, fmt.Errorf("%w %s: log dir: %w", ErrStart, spec.Name, err)
	}
	if spec.LogLevel == "" {
		spec.LogLevel = "WARN"
	}
	console, err := openConsoleFifo(filepath.Join(dir, "console"))
	if err != nil {
		return nil, fmt.Errorf("%w %s: console: %w", ErrStart, spec.Name, err)
	}
	spec.ConsoleFile = console.path
	items, upper, err := Render(spec, own, unifiedCgroup())
	if err != nil {
		console.close()
		return nil, fmt.Errorf("%w %s: %s: %w", ErrStart, spec.Name, spec.ConfigFile, err)
	}
	if err := prepareDirs(spec, upper); err != nil {
		console.close()
		return nil, fmt.Errorf("%w %s: %w", ErrStart, spec.Name, err)
	}
	cfgPath := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgPath, FormatConf(items), 0o644); err != nil {
		console.close()
		return nil, fmt.Errorf("%w %s: write config: %w", ErrStart, spec.Name, err)
	}
	// Truncate the log so errors reported below belong to this start.
	_ = os.Truncate(spec.LogFile, 0)

	// A daemon or monitor that died uncleanly leaves the container's
	// cgroups behind (empty); liblxc refuses to create them again.
	removeStaleCgroups(spec.cgroupName())
	init, _ := get(items, "lxc.init.cmd")
	argv, err := InitArgv(init)
	if err != nil {
		console.close()
		return nil, fmt.Errorf("%w %s: %w", ErrStart, spec.Name, err)
	}
	c, err := start(spec, argv)
	if err != nil {
		console.close()
		return nil, err
	}
	pidfd, err := c.InitPidFd()
	if err != nil {
		log.Warn("no pidfd for container init, polling", "container", spec.Name, "err", err)
	}
	// The monitor has the console log open now: drop our write end, so the
	// reader sees EOF exactly when the container's monitor exits.
	console.closeWriter()
	ct := &Container{log: log, spec: spec, c: c, pid: c.InitPid(), console: console.r, done: make(chan struct{})}
	if pidfd != nil {
		if fd, err := unix.FcntlInt(pidfd.Fd(), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			ct.initfd.Store(os.NewFile(uintptr(fd), "pidfd"))
		}
	}
	go ct.watch(pidfd)
	log.Info("container started", "container", spec.Name, "pid", ct.pid)
	return ct, nil
}

func start(spec Spec, argv []string) (*golxc.Container, error) {
	startMu.Lock()
	defer startMu.Unlock()
	c, err := golxc.NewContainer(spec.Name, spec.LXCPath)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrStart, spec.Name, err)
	}
	if c.Running() {
		// A daemon starts each container once per boot, so a running one
		// is a leftover of a daemon that died without stopping it (kill -9
		// in App Engine; on a device PID 1 dying takes everything along).
		// Booting again must not fail on it forever: stop it first.
		if err := c.Stop(); err != nil || c.Running() {
			c.Release()
			return nil, fmt.Errorf("%w %s: a leftover instance is running and does not stop: %v", ErrStart, spec.Name, err)
		}
		removeMonitorCgroup(spec.cgroupName(), time.Second)
	}
	if _, err := forkStart(spec.Name, spec.LXCPath, startTimeout, argv); err != nil {
		c.Release()
		removeMonitorCgroup(spec.cgroupName(), time.Second)
		return nil, fmt.Errorf("%w %s: %w%s", ErrStart, spec.Name, err, logTail(spec.LogFile))
	}
	if c.InitPid() <= 0 {
		c.Release()
		removeMonitorCgroup(spec.cgroupName(), time.Second)
		return nil, fmt.Errorf("%w %s: init exited right away%s", ErrStart, spec.Name, logTail(spec.LogFile))
	}
	return c, nil
}

// logTail summarises the LXC log for error messages (logSummary).
func logTail(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return logSummary(data)
}

// prepareDirs creates the overlay upper dir and the role mount sources.
func prepareDirs(spec Spec, upper string) error {
	dirs := RoleDirs(spec)
	if upper != "" {
		dirs = append(dirs, upper)
	}
	if spec.RootfsMount != "" {
		dirs = append(dirs, spec.RootfsMount)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// removeMonitorCgroup removes the monitor cgroup of name in every mounted
// hierarchy, retrying up to wait while the exiting monitor still holds it.
func removeMonitorCgroup(name string, wait time.Duration) {
	roots, err := cgroupRoots()
	if err != nil {
		return
	}
	// liblxc creates it below this process's own cgroup, which differs
	// per v1 hierarchy (e.g. memory:/process_api/<id> under a supervisor).
	bases := ownCgroups()
	deadline := time.Now().Add(wait)
	var dirs []string
	for _, r := range roots {
		for _, b := range bases {
			dirs = append(dirs, filepath.Join(r, b, MonitorCgroup(name)))
		}
	}
	for _, dir := range dirs {
		for {
			err := unix.Rmdir(dir)
			if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// removeStaleCgroups removes the payload and monitor cgroups of name in
// every mounted hierarchy when no process is left in them: liblxc fails
// to start a container whose cgroup exists ("Numerical result out of
// range - Failed to create container cgroup"). A tree with a live process
// (a leftover container, which start stops first) is left alone.
func removeStaleCgroups(name string) {
	roots, err := cgroupRoots()
	if err != nil {
		return
	}
	for _, r := range roots {
		for _, b := range ownCgroups() {
			for _, d := range []string{PayloadCgroup(name), MonitorCgroup(name)} {
				dir := filepath.Join(r, b, d)
				if !cgroupBusy(dir) {
					removeCgroupTree(dir)
				}
			}
		}
	}
}

// cgroupBusy reports whether a process lives in dir or below it.
func cgroupBusy(dir string) bool {
	busy := false
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			busy = true
			return filepath.SkipAll
		}
		return nil
	})
	return busy
}

// removeCgroupTree removes the cgroup dir, children first. The kernel
// refuses (EBUSY) to remove a cgroup that still has processes.
func removeCgroupTree(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = unix.Rmdir(dir)
}

// ownCgroups lists the distinct cgroup paths of this process ("/" first).
func ownCgroups() []string {
	out := []string{"/"}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return out
	}
	seen := map[string]bool{"/": true}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || seen[parts[2]] {
			continue
		}
		seen[parts[2]] = true
		out = append(out, parts[2])
	}
	return out
}

// cgroupRoots lists the mount points of cgroup and cgroup2 hierarchies.
func cgroupRoots() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var roots []string
	for _, l := range strings.Split(string(data), "\n") {
		_, post, ok := strings.Cut(l, " - ")
		f := strings.Fields(l)
		if !ok || len(f) < 5 {
			continue
		}
		if typ := strings.Fields(post); len(typ) > 0 && (typ[0] == "cgroup" || typ[0] == "cgroup2") {
			roots = append(roots, f[4])
		}
	}
	return roots, nil
}

// unifiedCgroup reports whether /sys/fs/cgroup is a pure cgroup2 hierarchy.
func unifiedCgroup() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Available returns nil: this build runs containers through liblxc.
func Available() error { return nil }

// Pid returns the host PID of the container's init.
func (c *Container) Pid() int { return c.pid }

// TakePidFd hands the caller a pidfd of the container's init, nil when
// LXC gave none or it was taken already. LXC's monitor got it when it
// cloned init, so unlike pidfd_open(Pid()) it cannot name a process that
// reused the PID after init exited.
func (c *Container) TakePidFd() *os.File { return c.initfd.Swap(nil) }

// Name returns the container name.
func (c *Container) Name() string { return c.spec.Name }

// Console returns the read end of the console log FIFO. It reaches EOF when
// the container stops. Whoever reads it (the log server) owns it: it must
// keep reading, since a full FIFO stalls the container's console, and close
// it at EOF. Stop leaves it open so the last lines an init prints while it
// stops are still read.
func (c *Container) Console() *os.File { return c.console }

// Done is closed when the container's init has exited.
func (c *Container) Done() <-chan struct{} { return c.done }

// Wait blocks until init exits or ctx ends.
func (c *Container) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Container) watch(pidfd *os.File) {
	defer close(c.done)
	if pidfd != nil {
		defer pidfd.Close()
		fds := []unix.PollFd{{Fd: int32(pidfd.Fd()), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}
	// No pid means init is already gone (kill(-1, 0) would "succeed").
	for c.pid > 0 && unix.Kill(c.pid, 0) == nil {
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts the container down: the halt signal, up to StopTimeout for init
// to exit, then SIGKILL. It waits for LXC to finish its cleanup and releases
// the container. Calling it again returns the first result.
func (c *Container) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

// exitGrace bounds the wait for init to exit once LXC reports the
// container stopped.
const exitGrace = 10 * time.Second

func (c *Container) stop(ctx context.Context) error {
	timeout := c.spec.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	var errs []error
	select {
	case <-c.done:
	default:
		if c.c.Running() {
			if err := c.c.Shutdown(timeout); err != nil {
				c.log.Warn("container did not shut down, killing", "container", c.spec.Name, "err", err)
				if kerr := c.c.Stop(); kerr != nil && c.c.Running() {
					errs = append(errs, fmt.Errorf("kill container %s: %w", c.spec.Name, kerr))
				}
			}
		}
	}
	// LXC's monitor unmounts and removes cgroups after init exits.
	if !c.c.Wait(golxc.STOPPED, 10*time.Second) {
		errs = append(errs, fmt.Errorf("container %s: still %s after stop", c.spec.Name, c.c.State()))
	}
	// An init stuck in uninterruptible sleep (a hung NFS or USB device)
	// survives SIGKILL: bound the wait so the platform's later jobs, and
	// whoever awaits them, are not held forever.
	grace := time.NewTimer(exitGrace)
	defer grace.Stop()
	select {
	case <-c.done:
	case <-grace.C:
		errs = append(errs, fmt.Errorf("container %s: init did not exit %v after it was killed", c.spec.Name, exitGrace))
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	c.c.Release()
	if f := c.initfd.Swap(nil); f != nil {
		f.Close()
	}
	removeMonitorCgroup(c.spec.cgroupName(), 2*time.Second)
	c.log.Info("container stopped", "container", c.spec.Name)
	return errors.Join(errs...)
}

// consoleBuffer is the console FIFO's capacity.
const consoleBuffer = 1 << 20

// consoleFifo is the FIFO LXC writes the console log to.
type consoleFifo struct {
	path string
	r, w *os.File
}

// openConsoleFifo makes a fresh FIFO and opens both ends without blocking:
// the write end keeps the reader from seeing EOF before the monitor opens it.
func openConsoleFifo(path string) (*consoleFifo, error) {
	_ = os.Remove(path)
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		r.Close()
		return nil, err
	}
	// The monitor blocks (and with it the container's console) when the
	// FIFO is full: give a slow reader room. Failure only keeps 64 KiB.
	if rc, err := r.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, consoleBuffer) })
	}
	return &consoleFifo{path: path, r: r, w: w}, nil
}

func (f *consoleFifo) closeWriter() {
	if f.w != nil {
		f.w.Close()
		f.w = nil
	}
}

func (f *consoleFifo) close() {
	f.closeWriter()
	f.r.Close()
}

// Attach runs argv inside the running container name of lxcpath, with its
// namespaces, on the given stdio, and returns the command's exit status.
func Attach(lxcpath, name string, argv []string, env []string, stdin, stdout, stderr *os.File) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("attach: no command")
	}
	c, err := golxc.NewContainer(name, lxcpath)
	if err != nil {
		return -1, fmt.Errorf("attach %s: %w", name, err)
	}
	defer c.Release()
	if !c.Running() {
		return -1, fmt.Errorf("attach %s: container is not running (lxcpath %s)", name, lxcpath)
	}
	opts := golxc.DefaultAttachOptions
	opts.ClearEnv = true
	opts.Env = env
	opts.StdinFd, opts.StdoutFd, opts.StderrFd = stdin.Fd(), stdout.Fd(), stderr.Fd()
	status, err := c.RunCommandStatus(argv, opts)
	if err != nil {
		return -1, fmt.Errorf("attach %s: %w", name, err)
	}
	if status < 0 {
		return status, fmt.Errorf("attach %s: run %s failed", name, argv[0])
	}
	return status, nil
}
