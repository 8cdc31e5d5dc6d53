package pantavisor

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/state"
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

// follow copies what is appended to l's file in the container of pid to
// w until done closes; it then closes w.
func (l fileLogger) follow(pid int, done <-chan struct{}, w io.WriteCloser) {
	defer w.Close()
	path := filepath.Join("/proc", strconv.Itoa(pid), "root", l.file)
	var off int64
	buf := make([]byte, 32<<10)
	t := time.NewTicker(logPoll)
	defer t.Stop()
	for {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				if fi.Size() < off {
					off = 0 // truncated or replaced
				}
				for off < fi.Size() {
					n, err := f.ReadAt(buf, off)
					if n > 0 {
						w.Write(buf[:n])
						off += int64(n)
					}
					if err != nil {
						break
					}
				}
				if l.truncate && off >= l.maxSize {
					if f.Truncate(0) == nil {
						off = 0
					}
				}
			}
			f.Close()
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
		r, w, err := os.Pipe()
		if err != nil {
			m.log.Warn("logger", "platform", name, "file", l.file, "err", err)
			continue
		}
		m.logs.Subscribe(r, name, strings.TrimPrefix(l.file, "/"), logserver.Info)
		go l.follow(pid, done, w)
	}
}
