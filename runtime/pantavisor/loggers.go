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
// "file", or the defaults when it has none.
func fileLoggers(p *state.Platform) []fileLogger {
	if p == nil {
		return nil
	}
	if len(p.Logs) == 0 {
		return []fileLogger{{"/var/log/syslog", defaultLogMax, true}, {"/var/log/messages", defaultLogMax, true}}
	}
	var out []fileLogger
	for _, l := range p.Logs {
		f := l["file"]
		if f == "" || !strings.HasPrefix(f, "/") {
			continue
		}
		fl := fileLogger{file: filepath.Clean(f), maxSize: defaultLogMax, truncate: l["truncate"] != "false"}
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
// The container's init is held by a pidfd taken when the container
// started: /proc/<pid>/root is opened afresh for each poll (so no poll
// keeps the container's root mounted once it stops) and used only if that
// process still lives afterwards, so a reused PID cannot point the
// followers at another process's files.
type containerRoot struct {
	pid   int
	pidfd int
}

// openContainerRoot pins process pid; the caller closes the result.
func openContainerRoot(pid int) (*containerRoot, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of container init %d: %w", pid, err)
	}
	return &containerRoot{pid: pid, pidfd: fd}, nil
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
	rfd, err := reopen(fd, &st, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "reopen", Path: name, Err: err}
	}
	return os.NewFile(uintptr(rfd), name), nil
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
// once off reaches l.maxSize (when l.truncate), and returns the new offset.
func (l fileLogger) poll(root *os.File, off int64, buf []byte, w io.Writer) (int64, error) {
	f, err := openInRoot(root, l.file)
	if err != nil {
		return off, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return off, err
	}
	if fi.Size() < off {
		off = 0 // truncated or replaced
	}
	// Up to the size seen now: a container appending without pause
	// cannot keep one poll going.
	for off < fi.Size() {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), fi.Size()-off)], off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return off, werr
			}
			off += int64(n)
		}
		if err != nil {
			break
		}
	}
	if l.truncate && off >= l.maxSize {
		if err := truncateLog(f); err != nil {
			return off, err
		}
		off = 0
	}
	return off, nil
}

// pollContainer polls l's file inside the container held by c.
func (l fileLogger) pollContainer(c *containerRoot, off int64, buf []byte, w io.Writer) (int64, error) {
	root, err := c.open()
	if err != nil {
		return off, err
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
	warned := false
	for {
		var err error
		off, err = l.pollContainer(c, off, buf, w)
		if errors.Is(err, unix.ENOSYS) && !warned {
			log.Warn("file logger needs openat2 (Linux 5.6)", "file", l.file, "err", err)
			warned = true
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// startLoggers subscribes the file loggers of platform name (pid) to the
// log server, with the file path as the log source.
func (m *Containers) startLoggers(name string, pid int, done <-chan struct{}) {
	if m.logs == nil || m.st == nil {
		return
	}
	for _, l := range fileLoggers(m.st.Platform(name)) {
		// Pin init now, while pid surely is the container's.
		c, err := openContainerRoot(pid)
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
