package logserver

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Output names of PV_LOG_SERVER_OUTPUTS.
const (
	OutFiletree         = "filetree"
	OutSinglefile       = "singlefile"
	OutStdout           = "stdout"
	OutStdoutPantavisor = "stdout.pantavisor"
	OutStdoutContainers = "stdout.containers"
	OutStdoutDirect     = "stdout_direct"
	OutNullsink         = "nullsink"
)

// ErrUnknownOutput is returned for a name not in PV_LOG_SERVER_OUTPUTS' list.
var ErrUnknownOutput = errors.New("unknown log output")

// output is one destination. All methods run on the output's own goroutine.
type output interface {
	// accept is called by producers (any goroutine) to skip queueing.
	accept(r *record) bool
	write(r *record)
	// flush is called when the queue is momentarily empty.
	flush()
	close()
}

// outputFactory builds a named output.
type outputFactory func(s *Server) output

// outputs is the registry of queued outputs. stdout_direct and nullsink
// are not queued: the first is written by the caller, the second drops.
var outputs = map[string]outputFactory{
	OutFiletree:   newFiletree,
	OutSinglefile: newSinglefile,
	OutStdout: func(s *Server) output {
		return newStdout(s, func(r *record) bool { return true })
	},
	OutStdoutPantavisor: func(s *Server) output {
		return newStdout(s, func(r *record) bool { return r.Platform == PlatformPantavisor })
	},
	OutStdoutContainers: func(s *Server) output {
		return newStdout(s, func(r *record) bool { return r.Platform != PlatformPantavisor })
	},
}

// ParseOutputs splits and checks a PV_LOG_SERVER_OUTPUTS value.
func ParseOutputs(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, ok := outputs[f]; !ok && f != OutStdoutDirect && f != OutNullsink {
			return nil, fmt.Errorf("%w %q", ErrUnknownOutput, f)
		}
		out = append(out, f)
	}
	return out, nil
}

// item is a queued record, or a control function run in queue order.
type item struct {
	r    *record
	ctl  func()
	done chan struct{}
}

// sink runs one output on its own goroutine behind a bounded queue.
type sink struct {
	name    string
	out     output
	q       chan item
	dropped atomic.Uint64
	written atomic.Uint64
	done    chan struct{}
}

func startSink(name string, out output, qlen int) *sink {
	k := &sink{name: name, out: out, q: make(chan item, qlen), done: make(chan struct{})}
	go k.run()
	return k
}

func (k *sink) run() {
	defer close(k.done)
	for it := range k.q {
		if it.ctl != nil {
			it.ctl()
			if it.done != nil {
				close(it.done)
			}
			if it.r == nil && it.done == nil {
				// stop marker
				k.out.flush()
				k.out.close()
				return
			}
			continue
		}
		k.out.write(it.r)
		k.written.Add(1)
		if len(k.q) == 0 {
			k.out.flush()
		}
	}
}

// offer queues r without blocking; a full queue loses it.
func (k *sink) offer(r *record) {
	if !k.out.accept(r) {
		return
	}
	select {
	case k.q <- item{r: r}:
	default:
		k.dropped.Add(1)
	}
}

// control runs f on the sink goroutine after what is already queued and
// waits for it.
func (k *sink) control(f func()) {
	done := make(chan struct{})
	select {
	case k.q <- item{ctl: f, done: done}:
	case <-k.done:
		return
	}
	select {
	case <-done:
	case <-k.done:
	}
}

// stop flushes and closes the output after the queued records.
func (k *sink) stop() {
	select {
	case k.q <- item{ctl: func() {}}:
	case <-k.done:
	}
	<-k.done
}

// logPath joins untrusted platform/source names below dir, keeping '/' in
// the source but never leaving dir.
func logPath(dir, rev, platform, source string) string {
	src := safeRel(source)
	if src == "_" {
		src = defaultSource
	}
	return filepath.Join(dir, safeRel(rev), safeElem(platform), src)
}

// safeRel keeps the '/'-separated elements of s that stay below a
// directory: empty and "." elements go, ".." becomes "_..". "" gives "_".
func safeRel(s string) string {
	var parts []string
	for _, e := range strings.Split(s, "/") {
		if e == "" || e == "." {
			continue
		}
		parts = append(parts, safeElem(e))
	}
	if len(parts) == 0 {
		return "_"
	}
	return strings.Join(parts, "/")
}

func safeElem(e string) string {
	e = strings.Map(func(r rune) rune {
		if r == 0 || r == '/' {
			return '_'
		}
		return r
	}, e)
	if e == "" || e == "." || e == ".." {
		return "_" + e
	}
	return e
}

// filetree writes pantavisor lines to <rev>/pantavisor/pantavisor.log and
// container messages raw to <rev>/<plat>/<src>.
type filetree struct {
	s     *Server
	files *fileSet
	tf    TimeFormat
	buf   []byte
	paths map[pathKey]string // sanitised path cache
}

type pathKey struct{ rev, platform, source string }

func newFiletree(s *Server) output {
	return &filetree{s: s, files: newFileSet(s), tf: s.tf[OutFiletree],
		paths: map[pathKey]string{}}
}

func (o *filetree) accept(r *record) bool { return r.Level <= o.s.level }

func (o *filetree) write(r *record) {
	b := o.buf[:0]
	key := pathKey{r.rev, r.Platform, r.Source}
	if r.Platform == PlatformPantavisor {
		key.source = ""
	}
	path, ok := o.paths[key]
	if !ok {
		if len(o.paths) >= 1024 {
			clear(o.paths)
		}
		if r.Platform == PlatformPantavisor {
			path = filepath.Join(o.s.o.LogDir, safeRel(r.rev), PlatformPantavisor, "pantavisor.log")
		} else {
			path = logPath(o.s.o.LogDir, r.rev, r.Platform, r.Source)
		}
		o.paths[key] = path
	}
	if r.Platform == PlatformPantavisor {
		b = appendPVLines(b, o.s.clock, o.tf, r)
	} else {
		b = append(b, r.Msg...)
		if !r.Raw {
			b = append(b, '\n')
		}
	}
	o.files.write(path, b)
	if cap(b) <= 64<<10 {
		o.buf = b
	}
}

func (o *filetree) flush() { o.files.flush() }
func (o *filetree) close() { o.files.closeAll() }

// singlefile writes JSON lines to <rev>/pv.log.
type singlefile struct {
	s     *Server
	files *fileSet
	tf    TimeFormat
	buf   []byte
}

func newSinglefile(s *Server) output {
	return &singlefile{s: s, files: newFileSet(s), tf: s.tf[OutSinglefile]}
}

func (o *singlefile) accept(r *record) bool { return r.Level <= o.s.level }

func (o *singlefile) write(r *record) {
	o.buf = appendJSONLine(o.buf[:0], o.s.clock, o.tf, r, platKeySinglefile)
	o.files.write(filepath.Join(o.s.o.LogDir, safeRel(r.rev), "pv.log"), o.buf)
}

func (o *singlefile) flush() { o.files.flush() }
func (o *singlefile) close() { o.files.closeAll() }

// stdout writes "[plat] tsec LEVEL\t -- [src]: line" lines to Options.Stdout.
type stdout struct {
	s      *Server
	filter func(*record) bool
	w      *bufio.Writer
	tf     TimeFormat
	buf    []byte
}

func newStdout(s *Server, filter func(*record) bool) output {
	return &stdout{s: s, filter: filter, w: bufio.NewWriterSize(s.stdout, 8<<10), tf: s.tf[OutStdout]}
}

func (o *stdout) accept(r *record) bool {
	return r.Level <= o.s.level && !r.onConsole && o.filter(r)
}

func (o *stdout) write(r *record) {
	b := o.buf[:0]
	b = appendPVLines(b, o.s.clock, o.tf, r)
	o.w.Write(b)
	if cap(b) <= 64<<10 {
		o.buf = b
	}
}

func (o *stdout) flush() { o.w.Flush() }
func (o *stdout) close() { o.w.Flush() }

// update captures messages of level <= ERROR produced while an update is
// running into trails/<rev>/.pv/logs.tmp (JSON lines, capped at
// Options.UpdateMaxSize); finish renames it to .pv/logs.
type update struct {
	s        *Server
	rev      string
	f        *os.File
	size     int64
	finished string // last finished revision: late records are ignored
	buf      []byte
}

func newUpdate(s *Server) *update { return &update{s: s} }

func (o *update) accept(r *record) bool {
	return r.update != "" && r.Level <= Error
}

func (o *update) path(rev, name string) string {
	return filepath.Join(o.s.trailsDir, safeRel(rev), ".pv", name)
}

func (o *update) write(r *record) {
	if r.update == o.finished {
		return
	}
	if o.f == nil || o.rev != r.update {
		o.closeFile()
		o.rev = r.update
		if _, err := os.Stat(filepath.Join(o.s.trailsDir, safeRel(r.update))); err != nil {
			return // no such trail: nothing to attach the logs to
		}
		if err := os.MkdirAll(filepath.Dir(o.path(r.update, "logs.tmp")), 0o755); err != nil {
			return
		}
		f, err := os.OpenFile(o.path(r.update, "logs.tmp"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			o.s.log.Warn("update logs", "rev", r.update, "err", err)
			return
		}
		o.f = f
		o.size = 0
		if st, err := f.Stat(); err == nil {
			o.size = st.Size()
		}
	}
	o.buf = appendJSONLine(o.buf[:0], o.s.clock, TimeFormat{}, r, platKeyUpdate)
	if o.size+int64(len(o.buf)) > o.s.o.UpdateMaxSize {
		o.s.updateCapped.Add(1)
		return
	}
	n, _ := o.f.Write(o.buf)
	o.size += int64(n)
}

func (o *update) closeFile() {
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
}

// finish closes the capture of rev and publishes it as .pv/logs.
func (o *update) finish(rev string) {
	if rev == "" {
		return
	}
	o.closeFile()
	o.finished = rev
	err := os.Rename(o.path(rev, "logs.tmp"), o.path(rev, "logs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.s.log.Warn("update logs", "rev", rev, "err", err)
	}
}

// begin starts a capture of rev, forgetting an earlier finish of it.
func (o *update) begin(rev string) {
	if o.finished == rev {
		o.finished = ""
	}
}

func (o *update) flush() {}
func (o *update) close() { o.closeFile() }
