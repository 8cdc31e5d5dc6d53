package pantavisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"golang.org/x/sys/unix"
)

// Default file loggers of a platform whose run.json has no "logs" (spec
// §7): syslog and messages, 2 MiB, truncated once read past that.
const (
	defaultLogMax = 2 << 20
	logPoll       = 500 * time.Millisecond
)

// fileLogger follows one log file inside a container.
type fileLogger struct {
	file     string // path inside the container
	maxSize  int64
	truncate bool
}

// fileLoggers returns the file loggers of p: its "logs" entries with a
// "file", or the defaults when it has none. defMax (0 = defaultLogMax) is
// the maxsize of those without one.
func fileLoggers(p *state.Platform, defMax int64) []fileLogger {
	if p == nil {
		return nil
	}
	if defMax <= 0 {
		defMax = defaultLogMax
	}
	if len(p.Logs) == 0 {
		return []fileLogger{{"/var/log/syslog", defMax, true}, {"/var/log/messages", defMax, true}}
	}
	var out []fileLogger
	for _, l := range p.Logs {
		f := l["file"]
		if f == "" || !strings.HasPrefix(f, "/") {
			continue
		}
		fl := fileLogger{file: filepath.Clean(f), maxSize: defMax, truncate: l["truncate"] != "false"}
		if n, err := strconv.ParseInt(l["maxsize"], 10, 64); err == nil && n > 0 {
			fl.maxSize = n
		}
		out = append(out, fl)
	}
	return out
}

// containerRoot opens the root directory of a running container for one
// poll of its log files.
//
// The container's init is held by a pidfd LXC took when it cloned init:
// /proc/<pid>/root is opened afresh for each poll (so no poll keeps the
// container's root mounted once it stops) and used only if that process
// still lives afterwards. A PID number alone names whichever process has
// it now: pidfd_open(pid) after the start finished could pin a host
// process that reused the PID of an init that had exited, and the loggers
// would then follow the host's root.
type containerRoot struct {
	pid   int
	pidfd int
}

// errNotInit refuses a pidfd that does not pin process pid alive.
var errNotInit = errors.New("pidfd does not pin the container's init")

// pinContainerRoot holds the container whose init is pid through a
// duplicate of pidfd (a pidfd of that init); the caller closes the
// result. It refuses unless pidfd pins pid and that process lives.
func pinContainerRoot(pidfd *os.File, pid int) (*containerRoot, error) {
	if pidfd == nil {
		return nil, fmt.Errorf("container init %d: no pidfd: %w", pid, errNotInit)
	}
	fd, err := unix.FcntlInt(pidfd.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup pidfd of container init %d: %w", pid, err)
	}
	c := &containerRoot{pid: pid, pidfd: fd}
	// fdinfo shows the PID the pidfd pins (-1 once it exited).
	if got, err := pidfdPid(fd); err != nil || got != pid {
		c.Close()
		return nil, fmt.Errorf("container init %d: pidfd pins %d (%v): %w", pid, got, err, errNotInit)
	}
	return c, nil
}

// pidfdPid returns the PID pidfd fd pins, from its fdinfo.
func pidfdPid(fd int) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Pid in pidfd fdinfo")
}

// open returns the container's root directory (an O_PATH descriptor).
func (c *containerRoot) open() (*os.File, error) {
	p := "/proc/" + strconv.Itoa(c.pid) + "/root"
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	// The directory is init's if init still lives now that it is open.
	if err := unix.PidfdSendSignal(c.pidfd, 0, nil, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("container init %d: %w", c.pid, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

func (c *containerRoot) Close() error { return unix.Close(c.pidfd) }

// openInRoot opens the regular file name, a path inside the container
// whose root directory is root, for reading. Every component resolves
// inside root as if it were "/": a link to "/x" or to "../../x", or a
// ".." at the top, stays inside the container, and /proc magic links are
// refused. The last component is not followed when it is a link, and
// anything but a regular file (a FIFO, a device, a socket) is refused
// before it is opened for I/O, so opening cannot block or act on a device.
func openInRoot(root *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat2(int(root.Fd()), name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: name, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "open", Path: name, Err: errNotRegular}
	}
	if err := checkLogFS(fd, &st); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	rfd, err := reopen(fd, &st, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "reopen", Path: name, Err: err}
	}
	return os.NewFile(uintptr(rfd), name), nil
}

// ubifsMagic is UBIFS_SUPER_MAGIC (linux/magic.h), missing from x/sys.
const ubifsMagic = 0x24051905

// logFS lists the file systems a log file may be on: those that store
// files on a disk or in memory, where reading a file returns what was
// written to it and cannot block. Everything else is refused, unknown
// types included: a container holding CAP_SYS_ADMIN in its namespace can
// bind-mount any file it sees onto its log path, and PID 1 must not copy
// /proc/kcore, a sysfs, efivarfs, debugfs, tracefs, securityfs, cgroup,
// bpf, configfs or pstore file into the logs. Network and user-space file
// systems (nfs, cifs, 9p, fuse) are refused too: the container may serve
// them itself, and a read that never returns would stall the logger.
var logFS = map[int64]string{
	unix.EXT4_SUPER_MAGIC:      "ext2/3/4",
	unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.RAMFS_MAGIC:           "ramfs",
	ubifsMagic:                 "ubifs",
	unix.F2FS_SUPER_MAGIC:      "f2fs",
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.SQUASHFS_MAGIC:        "squashfs",
	unix.MSDOS_SUPER_MAGIC:     "vfat",
	unix.JFFS2_SUPER_MAGIC:     "jffs2",
	unix.EXFAT_SUPER_MAGIC:     "exfat",
}

// errFS refuses a log file on a file system that is not in logFS.
var errFS = errors.New("not on a disk or memory file system")

// checkLogFS refuses the file fd (st) unless it is on a file system of
// logFS. Overlayfs hands its layers' files through, and a sysfs directory
// can be a lower layer: a file there owns no blocks whatever size it
// reports, so on overlay a file with a size and no blocks is refused too
// (a log made only of holes loses nothing).
func checkLogFS(fd int, st *unix.Stat_t) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return fmt.Errorf("fstatfs: %w", err)
	}
	t := int64(uint32(fs.Type))
	if _, ok := logFS[t]; !ok {
		return fmt.Errorf("%w: file system type %#x", errFS, t)
	}
	if t == unix.OVERLAYFS_SUPER_MAGIC && st.Size > 0 && st.Blocks == 0 {
		return fmt.Errorf("%w: overlay file without blocks", errFS)
	}
	return nil
}

// errNotRegular refuses a log "file" that is a link, FIFO, device or
// directory.
var errNotRegular = errors.New("not a regular file")

// reopen opens the file that fd refers to again with flags, through
// /proc/self/fd: the same inode on the same mount, no path walked again,
// checked against want.
func reopen(fd int, want *unix.Stat_t, flags int) (int, error) {
	nfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err != nil {
		unix.Close(nfd)
		return -1, err
	}
	if st.Dev != want.Dev || st.Ino != want.Ino || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(nfd)
		return -1, errors.New("file changed while reopened")
	}
	return nfd, nil
}

// truncateLog empties the regular file f was opened on (by openInRoot),
// never anything a link points to. A file with other hard links is left
// alone: one of them could be outside the container's view.
func truncateLog(f *os.File) error {
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if st.Nlink != 1 {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: fmt.Errorf("%d hard links", st.Nlink)}
	}
	wfd, err := reopen(fd, &st, unix.O_WRONLY|unix.O_NONBLOCK)
	if err != nil {
		return &os.PathError{Op: "reopen", Path: f.Name(), Err: err}
	}
	defer unix.Close(wfd)
	if err := unix.Ftruncate(wfd, 0); err != nil {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: err}
	}
	return nil
}

// poll copies what l's file inside root gained past off to w, truncates it
// once off reaches l.maxSize (when l.truncate), and returns the new offset
// and the number of bytes skipped. One poll reads at most l.maxSize bytes:
// when the file grew by more (a sparse file of 16 TiB costs the container
// nothing), the start of what it gained is skipped.
func (l fileLogger) poll(root *os.File, off int64, buf []byte, w io.Writer) (next, skipped int64, err error) {
	f, err := openInRoot(root, l.file)
	if err != nil {
		return off, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return off, 0, err
	}
	size := fi.Size()
	if size < off {
		off = 0 // truncated or replaced
	}
	if size-off > l.maxSize {
		skipped = size - l.maxSize - off
		off = size - l.maxSize
	}
	// Up to the size seen now: a container appending without pause
	// cannot keep one poll going.
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return off, skipped, werr
			}
			off += int64(n)
		}
		if err != nil {
			break
		}
	}
	if l.truncate && off >= l.maxSize {
		if err := truncateLog(f); err != nil {
			return off, skipped, err
		}
		off = 0
	}
	return off, skipped, nil
}

// pollContainer polls l's file inside the container held by c.
func (l fileLogger) pollContainer(c *containerRoot, off int64, buf []byte, w io.Writer) (next, skipped int64, err error) {
	root, err := c.open()
	if err != nil {
		return off, 0, err
	}
	defer root.Close()
	return l.poll(root, off, buf, w)
}

// follow copies what is appended to l's file inside the container held
// by c to w until done closes; it then closes w. Errors are expected (the
// file does not exist yet, the container stops); only one that means file
// loggers cannot work here is logged, once.
func (l fileLogger) follow(log *slog.Logger, c *containerRoot, done <-chan struct{}, w io.WriteCloser) {
	defer w.Close()
	var off int64
	buf := make([]byte, 32<<10)
	t := time.NewTicker(logPoll)
	defer t.Stop()
	var warnedSys, warnedFS, warnedSkip bool
	for {
		var err error
		var skipped int64
		off, skipped, err = l.pollContainer(c, off, buf, w)
		switch {
		case errors.Is(err, unix.ENOSYS) && !warnedSys:
			log.Warn("file logger needs openat2 (Linux 5.6)", "file", l.file, "err", err)
			warnedSys = true
		case errors.Is(err, errFS) && !warnedFS:
			log.Warn("file logger refuses the file", "file", l.file, "err", err)
			warnedFS = true
		}
		if skipped > 0 && !warnedSkip {
			log.Warn("file logger skipped what the file gained past its maxsize in one poll (noted once)", "file", l.file, "skipped", skipped)
			warnedSkip = true
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// startLoggers subscribes the file loggers of platform name (init pid,
// held by pidfd, which it closes) to the log server, with the file path
// as the log source. Without a pidfd that pins pid no logger starts.
func (m *Containers) startLoggers(name string, pid int, pidfd *os.File, done <-chan struct{}) {
	if pidfd != nil {
		defer pidfd.Close()
	}
	if m.logs == nil || m.st == nil || m.loggers.Off {
		return
	}
	for _, l := range fileLoggers(m.st.Platform(name), m.loggers.MaxSize) {
		c, err := pinContainerRoot(pidfd, pid)
		if err != nil {
			m.log.Warn("logger", "platform", name, "file", l.file, "err", err)
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			c.Close()
			m.log.Warn("logger", "platform", name, "file", l.file, "err", err)
			continue
		}
		m.logs.Subscribe(r, name, strings.TrimPrefix(l.file, "/"), logserver.Info)
		go func() {
			defer c.Close()
			l.follow(m.log.With("platform", name), c, done, w)
		}()
	}
}

// LoggerOptions configure the containers' file loggers.
type LoggerOptions struct {
	// Off is PV_LOG_LOGGERS=0: no file logger runs.
	Off bool
	// MaxSize is PV_LOG_MAXSIZE: the maxsize of a logger whose run.json
	// entry has none (0 = defaultLogMax).
	MaxSize int64
}

// loggerOptions reads PV_LOG_LOGGERS and PV_LOG_MAXSIZE; a size that does
// not parse is reported and left at the default.
func loggerOptions(c *config.Config, log *slog.Logger) LoggerOptions {
	o := LoggerOptions{Off: !c.Bool(config.LogLoggers)}
	if n, pct := c.Size(config.LogMaxSize); n > 0 && !pct {
		o.MaxSize = n
	} else if v := c.Get(config.LogMaxSize); v != "" && log != nil {
		log.Warn("config: PV_LOG_MAXSIZE ignored", "value", v)
	}
	return o
}
