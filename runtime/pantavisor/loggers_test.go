package pantavisor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"golang.org/x/sys/unix"
)

// hostSecret writes a 3 MiB file outside any container root: more than a
// default logger's maxsize, so a logger reaching it would truncate it.
func hostSecret(t *testing.T) (dir, file string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "secret")
	data = bytes.Repeat([]byte("host secret\n"), (3<<20)/12)
	must(t, os.WriteFile(file, data, 0o600))
	return dir, file, data
}

// checkIntact fails unless file still holds data.
// checkEscapesRefused polls, through c, the log paths the test roots
// point out of the container (absolute and relative links, a FIFO): none
// is read and the host file secret keeps data; the regular log
// /var/log/good is read.
func checkEscapesRefused(t *testing.T, c *containerRoot, secret string, data []byte) {
	t.Helper()
	buf := make([]byte, 32<<10)
	for _, file := range []string{"/var/log/messages", "/var/log/syslog", "/var/abslog/secret", "/var/rellog/secret", "/var/log/fifo"} {
		var out bytes.Buffer
		l := fileLogger{file: file, maxSize: defaultLogMax, truncate: true}
		if off, _, err := l.pollContainer(c, 0, buf, &out); err == nil || out.Len() != 0 {
			t.Errorf("pollContainer(%s) = %d, %v, copied %d bytes; want an error and nothing copied", file, off, err, out.Len())
		}
	}
	checkIntact(t, secret, data)
	var out bytes.Buffer
	l := fileLogger{file: "/var/log/good", maxSize: defaultLogMax, truncate: true}
	if off, _, err := l.pollContainer(c, 0, buf, &out); err != nil || out.String() != "hello\n" {
		t.Errorf("pollContainer(good) = %d, %v, %q; want hello", off, err, out.String())
	}
}

func checkIntact(t *testing.T, file string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("host file %s: %d bytes, %v; want it untouched (%d bytes)", file, len(got), err, len(data))
	}
}

// up is a relative link prefix that climbs far above any temp dir.
var up = strings.Repeat("../", 16)

// escapeRoot makes a fake container root whose log paths lead, on the
// host side, to the host file secret (in hostDir): the attacks a
// container can stage in its own tree. It also holds var/log/good.
func escapeRoot(t *testing.T, root, hostDir, secret string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "var/log/good"), []byte("hello\n"), 0o644))
	for link, target := range map[string]string{
		"var/log/messages": secret,                     // absolute link to a host file
		"var/log/syslog":   up + secret[1:],            // relative link climbing out
		"var/abslog":       hostDir,                    // absolute link to a host dir
		"var/rellog":       up + hostDir[1:],           // relative link to a host dir
		"var/log/inroot":   "/var/log/good",            // link to a file inside: not followed
		"var/inlog":        "log",                      // link to a dir inside: followed
		"var/log/proc":     "/proc/self/root" + secret, // magic link on the way
	} {
		must(t, os.Symlink(target, filepath.Join(root, link)))
	}
	must(t, unix.Mkfifo(filepath.Join(root, "var/log/fifo"), 0o644))
}

func TestOpenInRoot(t *testing.T) {
	hostDir, secret, data := hostSecret(t)
	dir := t.TempDir()
	escapeRoot(t, dir, hostDir, secret)
	root, err := os.Open(dir)
	must(t, err)
	defer root.Close()
	tests := []struct {
		name, file string
		want       string // content; "" = refused
	}{
		{"regular file", "/var/log/good", "hello\n"},
		{"dir link inside", "/var/inlog/good", "hello\n"},
		{"dot-dot above the root", "/../../../var/log/good", "hello\n"},
		{"absolute link to a host file", "/var/log/messages", ""},
		{"relative link climbing out", "/var/log/syslog", ""},
		{"absolute link to a host dir", "/var/abslog/secret", ""},
		{"relative link to a host dir", "/var/rellog/secret", ""},
		{"dot-dot to a host file", "/" + up + secret[1:], ""},
		{"link as last component", "/var/log/inroot", ""},
		{"fifo", "/var/log/fifo", ""},
		{"directory", "/var/log", ""},
		{"magic link", "/var/log/proc", ""},
		{"missing", "/var/log/none", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := openInRoot(root, tc.file)
			if tc.want == "" {
				if err == nil {
					got, _ := os.ReadFile(f.Name())
					f.Close()
					t.Fatalf("openInRoot(%s) = %s (%d bytes), want refused", tc.file, f.Name(), len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("openInRoot(%s) = %v, want %q", tc.file, err, tc.want)
			}
			defer f.Close()
			got := make([]byte, 64)
			n, _ := f.Read(got)
			if string(got[:n]) != tc.want {
				t.Errorf("openInRoot(%s) reads %q, want %q", tc.file, got[:n], tc.want)
			}
			if _, err := f.Write([]byte("x")); err == nil {
				t.Errorf("openInRoot(%s) is writable, want read-only", tc.file)
			}
		})
	}
	checkIntact(t, secret, data)
}

// TestPollReachesNoHostFile is the regression test of issue 11 defect 1:
// a container linking its log files to host files gets nothing read or
// truncated, while a real log past maxsize is read and truncated.
func TestPollReachesNoHostFile(t *testing.T) {
	hostDir, secret, data := hostSecret(t)
	dir := t.TempDir()
	escapeRoot(t, dir, hostDir, secret)
	big := bytes.Repeat([]byte("container log\n"), (3<<20)/14)
	must(t, os.WriteFile(filepath.Join(dir, "var/log/big"), big, 0o644))
	// A hard link shares the inode with a file the container may not own:
	// read (it is in the container's tree) but never truncated.
	linked := filepath.Join(hostDir, "linked")
	must(t, os.WriteFile(linked, big, 0o644))
	must(t, os.Link(linked, filepath.Join(dir, "var/log/hard")))
	root, err := os.Open(dir)
	must(t, err)
	defer root.Close()
	buf := make([]byte, 32<<10)
	for _, file := range []string{"/var/log/messages", "/var/log/syslog", "/var/abslog/secret", "/var/rellog/secret", "/var/log/fifo", "/var/log/proc"} {
		var out bytes.Buffer
		l := fileLogger{file: file, maxSize: defaultLogMax, truncate: true}
		off, _, err := l.poll(root, 0, buf, &out)
		if err == nil || off != 0 || out.Len() != 0 {
			t.Errorf("poll(%s) = %d, %v, copied %d bytes; want an error and nothing copied", file, off, err, out.Len())
		}
	}
	checkIntact(t, secret, data)

	var out bytes.Buffer
	l := fileLogger{file: "/var/log/big", maxSize: defaultLogMax, truncate: true}
	// One poll reads at most maxsize: the last 2 MiB.
	tail := big[len(big)-defaultLogMax:]
	if off, skipped, err := l.poll(root, 0, buf, &out); err != nil || off != 0 || skipped != int64(len(big)-defaultLogMax) || !bytes.Equal(out.Bytes(), tail) {
		t.Errorf("poll(big) = %d, %d, %v, copied %d bytes; want 0, %d, nil, %d bytes", off, skipped, err, out.Len(), len(big)-defaultLogMax, len(tail))
	}
	if fi, err := os.Stat(filepath.Join(dir, "var/log/big")); err != nil || fi.Size() != 0 {
		t.Errorf("big log after poll: %v, %v; want truncated", fi, err)
	}
	out.Reset()
	l.file = "/var/log/hard"
	if off, _, err := l.poll(root, 0, buf, &out); err == nil || off != int64(len(big)) || !bytes.Equal(out.Bytes(), tail) {
		t.Errorf("poll(hard link) = %d, %v; want its last %d bytes read, then truncation refused", off, err, len(tail))
	}
	checkIntact(t, linked, big)
}

// bindMount bind-mounts src on dst (created as a directory) until the
// test ends.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	must(t, os.MkdirAll(dst, 0o755))
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
}

// TestPollRefusesPseudoFS is the regression test of review finding 2
// (pseudo files): a container mounting a proc or sysfs directory (or an
// overlay with one as a layer) on its log directory gets nothing read.
// The files used are harmless and readable; a log on tmpfs still works.
func TestPollRefusesPseudoFS(t *testing.T) {
	testenv.NeedRoot(t, "mounts inside a fake container root")
	dir := t.TempDir()
	bindMount(t, "/proc/sys/kernel", filepath.Join(dir, "proc"))
	bindMount(t, "/sys/kernel", filepath.Join(dir, "sys"))
	tmp := filepath.Join(dir, "tmp")
	must(t, os.MkdirAll(tmp, 0o755))
	must(t, unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { unix.Unmount(tmp, unix.MNT_DETACH) })
	must(t, os.WriteFile(filepath.Join(tmp, "log"), []byte("tmpfs log\n"), 0o644))
	ovl := filepath.Join(dir, "ovl")
	for _, d := range []string{"ovl", "tmp/u", "tmp/w"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	if err := unix.Mount("overlay", ovl, "overlay", 0, "lowerdir=/sys/kernel,upperdir="+tmp+"/u,workdir="+tmp+"/w"); err != nil {
		t.Fatalf("overlay on sysfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(ovl, unix.MNT_DETACH) })
	root, err := os.Open(dir)
	must(t, err)
	defer root.Close()
	buf := make([]byte, 32<<10)
	for _, file := range []string{"/proc/ostype", "/proc/hostname", "/sys/uevent_seqnum", "/ovl/uevent_seqnum"} {
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			t.Fatalf("test file: %v", err)
		}
		var out bytes.Buffer
		l := fileLogger{file: file, maxSize: defaultLogMax, truncate: false}
		if off, _, err := l.poll(root, 0, buf, &out); !errors.Is(err, errFS) || off != 0 || out.Len() != 0 {
			t.Errorf("poll(%s) = %d, %v, copied %q; want %v and nothing copied", file, off, err, out.String(), errFS)
		}
	}
	var out bytes.Buffer
	l := fileLogger{file: "/tmp/log", maxSize: defaultLogMax, truncate: false}
	if _, _, err := l.poll(root, 0, buf, &out); err != nil || out.String() != "tmpfs log\n" {
		t.Errorf("poll(tmpfs log) = %v, %q; want it read", err, out.String())
	}
}

// countingWriter counts the bytes written to it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// TestPollSparseBounded is the regression test of review finding 2
// (sparse files): a 16 TiB sparse log costs one poll maxsize bytes read,
// the rest is skipped and counted.
func TestPollSparseBounded(t *testing.T) {
	testenv.NeedRoot(t, "mounts a tmpfs (ext4 stops short of 16 TiB files)")
	dir := t.TempDir()
	must(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	must(t, os.MkdirAll(filepath.Join(dir, "var/log"), 0o755))
	const size = 16 << 40
	for _, truncate := range []bool{true, false} {
		file := filepath.Join(dir, "var/log/messages")
		must(t, os.WriteFile(file, nil, 0o644))
		must(t, os.Truncate(file, size))
		root, err := os.Open(dir)
		must(t, err)
		defer root.Close()
		const max = 64 << 10
		var w countingWriter
		l := fileLogger{file: "/var/log/messages", maxSize: max, truncate: truncate}
		off, skipped, err := l.poll(root, 0, make([]byte, 32<<10), &w)
		if err != nil || w.n != max || skipped != size-max {
			t.Errorf("truncate=%v: poll(16 TiB sparse) = %d, skipped %d, %v, read %d bytes; want %d read, %d skipped", truncate, off, skipped, err, w.n, max, size-max)
		}
		want := int64(size) // read up to the end
		if truncate {
			want = 0 // and emptied
		}
		if off != want {
			t.Errorf("truncate=%v: offset %d, want %d", truncate, off, want)
		}
	}
}

// pinProcess holds the root of the test's own child pid, as the loggers
// hold a container's init.
func pinProcess(t *testing.T, pid int) *containerRoot {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	must(t, err)
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	defer pidfd.Close()
	c, err := pinContainerRoot(pidfd, pid)
	must(t, err)
	return c
}

// TestLoggerRefusesHostPid is the regression test of review finding 3: a
// container's init exits and a host process gets its PID before the
// loggers pin it. Given the init's pidfd and that PID (here the PID of a
// host process, since the kernel cannot be made to reuse one on demand),
// the logger refuses, whether init still lives or not; it never reads the
// host's files.
func TestLoggerRefusesHostPid(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: chroot needs root")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: no busybox: %v", err)
	}
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755))
	start := func(root string) *exec.Cmd {
		cmd := &exec.Cmd{Path: "/bin/busybox", Args: []string{"busybox", "sleep", "3600"},
			SysProcAttr: &syscall.SysProcAttr{Chroot: root}}
		must(t, cmd.Start())
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		return cmd
	}
	init := start(dir)
	fd, err := unix.PidfdOpen(init.Process.Pid, 0)
	must(t, err)
	initfd := os.NewFile(uintptr(fd), "pidfd")
	defer initfd.Close()
	host := start("/") // outside any container: its root is the host's
	// The host's file the logger would read through the host's root.
	hostLog := filepath.Join(t.TempDir(), "messages")
	must(t, os.WriteFile(hostLog, []byte("host log\n"), 0o644))
	l := fileLogger{file: hostLog, maxSize: defaultLogMax, truncate: true}

	check := func(when string) {
		t.Helper()
		c, err := pinContainerRoot(initfd, host.Process.Pid)
		if err == nil {
			defer c.Close()
			var out bytes.Buffer
			_, _, perr := l.pollContainer(c, 0, make([]byte, 4096), &out)
			t.Fatalf("%s: pinContainerRoot(init's pidfd, host pid) = nil error; poll copied %q (%v); want refused", when, out.String(), perr)
		}
		if !errors.Is(err, errNotInit) {
			t.Errorf("%s: pinContainerRoot(init's pidfd, host pid) = %v, want %v", when, err, errNotInit)
		}
	}
	check("init alive")
	init.Process.Kill()
	init.Wait()
	check("init exited")
	if _, err := pinContainerRoot(nil, host.Process.Pid); !errors.Is(err, errNotInit) {
		t.Errorf("pinContainerRoot(no pidfd) = %v, want %v", err, errNotInit)
	}
	checkIntact(t, hostLog, []byte("host log\n"))
}

// TestFollowProcessRoot runs the logger on a real process's root
// (/proc/<pid>/root): a chrooted busybox standing for a container's init.
func TestFollowProcessRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: chroot needs root")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: no busybox: %v", err)
	}
	hostDir, secret, data := hostSecret(t)
	dir := t.TempDir()
	escapeRoot(t, dir, hostDir, secret)
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755))
	cmd := &exec.Cmd{Path: "/bin/busybox", Args: []string{"busybox", "sleep", "3600"},
		SysProcAttr: &syscall.SysProcAttr{Chroot: dir}}
	must(t, cmd.Start())
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	c := pinProcess(t, cmd.Process.Pid)
	defer c.Close()
	checkEscapesRefused(t, c, secret, data)

	// Once init is gone its PID may be reused: the pinned root refuses.
	cmd.Process.Kill()
	cmd.Wait()
	exited = true
	if _, err := c.open(); !errors.Is(err, unix.ESRCH) && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open() after init exited = %v, want ESRCH or ENOENT", err)
	}
}

// TestLoggerLXC runs the logger on a real LXC container (its own mount
// namespace, pivot_root into a directory root) whose log files link to a
// host file: nothing is read or truncated; after the container stops its
// pinned root refuses to open.
func TestLoggerLXC(t *testing.T) {
	testenv.NeedRoot(t, "runs an LXC container")
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	bb, err := os.ReadFile(rootfs.DefaultBusybox)
	if err != nil {
		testenv.Skipf(t, "no busybox (Debian busybox-static): %v", err)
	}
	hostDir, secret, data := hostSecret(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	escapeRoot(t, root, hostDir, secret)
	for _, d := range []string{"bin", "sbin", "proc", "sys", "dev", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755))
	must(t, os.Symlink("busybox", filepath.Join(root, "bin/sh")))
	must(t, os.Symlink("busybox", filepath.Join(root, "bin/sleep")))
	must(t, os.Symlink("busybox", filepath.Join(root, "bin/echo")))
	must(t, os.WriteFile(filepath.Join(root, "sbin/init"), []byte(rootfs.DefaultInit), 0o755))
	conf := filepath.Join(dir, "lxc.container.conf")
	must(t, os.WriteFile(conf, []byte("lxc.rootfs.path = dir:"+root+"\nlxc.init.cmd = /sbin/init\n"+
		"lxc.mount.auto = proc:mixed sys:mixed\nlxc.namespace.keep = user net ipc\nlxc.apparmor.profile = unconfined\n"+
		"lxc.environment = PATH=/bin:/sbin\n"), 0o644))
	name := "pvt-logger-" + strconv.Itoa(os.Getpid())
	c, err := lxc.Start(context.Background(), slog.New(slog.NewTextHandler(testLog{t}, nil)),
		lxc.Spec{Name: name, LXCPath: filepath.Join(dir, "lxc"), ConfigFile: conf, StopTimeout: 10 * time.Second})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "lxc", name, "lxc.log"))
		t.Fatalf("lxc.Start() = %v\n%s", err, log)
	}
	go io.Copy(io.Discard, c.Console())
	stopped := false
	defer func() {
		if !stopped {
			c.Stop(context.Background())
		}
	}()
	pidfd := c.TakePidFd()
	if pidfd == nil {
		t.Fatal("TakePidFd() = nil, want LXC's pidfd of init")
	}
	cr, err := pinContainerRoot(pidfd, c.Pid())
	pidfd.Close()
	must(t, err)
	defer cr.Close()
	checkEscapesRefused(t, cr, secret, data)
	must(t, c.Stop(context.Background()))
	stopped = true
	if r, err := cr.open(); err == nil {
		r.Close()
		t.Errorf("open() after the container stopped = nil error, want one")
	}
}

// TestFollow runs the follower loop until done closes.
func TestFollow(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: chroot needs root")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: no busybox: %v", err)
	}
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "var/log"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "var/log/messages"), []byte("line one\n"), 0o644))
	cmd := &exec.Cmd{Path: "/bin/busybox", Args: []string{"busybox", "sleep", "3600"},
		SysProcAttr: &syscall.SysProcAttr{Chroot: dir}}
	must(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	c := pinProcess(t, cmd.Process.Pid)
	defer c.Close()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		fileLogger{file: "/var/log/messages", maxSize: defaultLogMax, truncate: true}.follow(slog.New(slog.NewTextHandler(testLog{t}, nil)), c, done, w)
	}()
	line := make([]byte, 9)
	if _, err := io.ReadFull(r, line); err != nil || string(line) != "line one\n" {
		t.Errorf("follow copied %q, %v; want the first line", line, err)
	}
	close(done)
	<-ended
	if n, err := r.Read(line); err == nil {
		t.Errorf("pipe after follow ended: read %d bytes, want EOF", n)
	}
}

func TestFileLoggers(t *testing.T) {
	tests := []struct {
		logs   []map[string]string
		defMax int64 // PV_LOG_MAXSIZE
		want   []fileLogger
	}{
		{nil, 0, []fileLogger{{"/var/log/syslog", defaultLogMax, true}, {"/var/log/messages", defaultLogMax, true}}},
		{nil, 4096, []fileLogger{{"/var/log/syslog", 4096, true}, {"/var/log/messages", 4096, true}}},
		{[]map[string]string{{"file": "/var/log/app.log", "maxsize": "100", "truncate": "false"}, {"file": "relative"}, {"lxc": "enable"}, {"file": "/a/../../b", "maxsize": "-1"}}, 0,
			[]fileLogger{{"/var/log/app.log", 100, false}, {"/b", defaultLogMax, true}}},
		{[]map[string]string{{"file": "/var/log/app.log", "maxsize": "100"}, {"file": "/b"}}, 4096,
			[]fileLogger{{"/var/log/app.log", 100, true}, {"/b", 4096, true}}},
	}
	for _, tc := range tests {
		got := fileLoggers(&state.Platform{Logs: tc.logs}, tc.defMax)
		if len(got) != len(tc.want) {
			t.Errorf("fileLoggers(%v) = %v, want %v", tc.logs, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("fileLoggers(%v)[%d] = %v, want %v", tc.logs, i, got[i], tc.want[i])
			}
		}
	}
	if got := fileLoggers(nil, 0); got != nil {
		t.Errorf("fileLoggers(nil) = %v, want nil", got)
	}
}

// FuzzFileLoggers: every logger of any "logs" entry names a clean absolute
// path and a positive size.
func FuzzFileLoggers(f *testing.F) {
	f.Add("/var/log/messages", "102400", "true")
	f.Add("/../../etc/shadow", "0", "false")
	f.Add("var/log/x", "abc", "")
	f.Add("/proc/self/root/etc", "9223372036854775807", "no")
	f.Fuzz(func(t *testing.T, file, maxsize, truncate string) {
		for _, l := range fileLoggers(&state.Platform{Logs: []map[string]string{{"file": file, "maxsize": maxsize, "truncate": truncate}}}, 0) {
			if !filepath.IsAbs(l.file) || filepath.Clean(l.file) != l.file || l.maxSize <= 0 {
				t.Errorf("fileLoggers(%q, %q) = %+v", file, maxsize, l)
			}
		}
	})
}

// FuzzOpenInRoot: whatever path a run.json names, what opens is inside
// the container root.
func FuzzOpenInRoot(f *testing.F) {
	hostDir := f.TempDir()
	secret := filepath.Join(hostDir, "secret")
	if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "var/log"), 0o755); err != nil {
		f.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "var/log/good"), []byte("good"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "var/log/messages"))
	os.Symlink(up+hostDir[1:], filepath.Join(dir, "var/rellog"))
	os.Symlink(hostDir, filepath.Join(dir, "var/abslog"))
	root, err := os.Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { root.Close() })
	for _, s := range []string{"/var/log/good", "/var/log/messages", "/var/rellog/secret", "/var/abslog/secret", "/" + up + secret[1:], secret} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		g, err := openInRoot(root, name)
		if err != nil {
			return
		}
		defer g.Close()
		b := make([]byte, 8)
		n, _ := g.Read(b)
		if string(b[:n]) == "host" {
			t.Errorf("openInRoot(%q) opened the host file", name)
		}
	})
}
