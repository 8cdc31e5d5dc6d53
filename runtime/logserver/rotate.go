package logserver

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rotatingSuffix marks a file renamed away for compression.
const rotatingSuffix = ".rotating"

// rotJob asks the maintainer to gzip src into base.<N>.gz.
type rotJob struct {
	src, base string
}

// maintainer owns everything that may take long on the log directory:
// gzip rotation and watermark cleanup. Writers hand it jobs and never wait.
type maintainer struct {
	dir    string
	budget Budget
	log    *slog.Logger

	jobs chan rotJob
	poke chan struct{}
	sync chan chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	rotated, deleted atomic.Uint64
	warned           bool      // cleanup could not reach the low watermark
	started          time.Time // older .rotating files are leftovers
}

func newMaintainer(dir string, b Budget, log *slog.Logger) *maintainer {
	m := &maintainer{dir: dir, budget: b, log: log,
		jobs: make(chan rotJob, 4), poke: make(chan struct{}, 1), sync: make(chan chan struct{}), stop: make(chan struct{}),
		started: time.Now()}
	m.wg.Add(1)
	go m.run()
	return m
}

func (m *maintainer) run() {
	defer m.wg.Done()
	for {
		select {
		case j := <-m.jobs:
			m.compress(j)
		case <-m.poke:
			m.cleanup()
		case done := <-m.sync:
			m.drain()
			m.cleanup()
			close(done)
		case <-m.stop:
			m.drain()
			m.cleanup()
			return
		}
	}
}

// drain compresses every queued job.
func (m *maintainer) drain() {
	for {
		select {
		case j := <-m.jobs:
			m.compress(j)
		default:
			return
		}
	}
}

// wait returns once the jobs queued so far are done and a cleanup ran.
func (m *maintainer) wait() {
	done := make(chan struct{})
	select {
	case m.sync <- done:
		<-done
	case <-m.stop:
	}
}

// submit hands a job over without blocking; false when the queue is full.
func (m *maintainer) submit(j rotJob) bool {
	select {
	case m.jobs <- j:
		return true
	default:
		return false
	}
}

// check asks for a directory size check (coalesced).
func (m *maintainer) check() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

func (m *maintainer) close() {
	close(m.stop)
	m.wg.Wait()
}

// gzIndex returns N for "<base>.<N>.gz" names.
func gzIndex(name, base string) (int, bool) {
	if !strings.HasPrefix(name, base+".") || !strings.HasSuffix(name, ".gz") {
		return 0, false
	}
	mid := name[len(base)+1 : len(name)-3]
	n, err := strconv.Atoi(mid)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// nextIndex is max existing N + 1.
func nextIndex(base string) int {
	ents, _ := os.ReadDir(filepath.Dir(base))
	b := filepath.Base(base)
	max := 0
	for _, e := range ents {
		if n, ok := gzIndex(e.Name(), b); ok && n > max {
			max = n
		}
	}
	return max + 1
}

func (m *maintainer) compress(j rotJob) {
	if err := compressFile(j.src, fmt.Sprintf("%s.%d.gz", j.base, nextIndex(j.base))); err != nil {
		m.log.Warn("log rotation", "file", j.base, "err", err)
		return
	}
	m.rotated.Add(1)
}

// compressFile gzips src to dst via a temporary file, then removes src.
func compressFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if _, err = io.Copy(zw, in); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err = zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err = out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("remove %s: %w", src, err)
	}
	return nil
}

type gzFile struct {
	path string
	size int64
	n    int
	mod  int64
}

// cleanup deletes the oldest .gz files of the largest directories while the
// log directory is above the high watermark, until it is below the low one.
// Leftover "<file>.rotating" files of a previous run are compressed first.
func (m *maintainer) cleanup() {
	if m.budget.Max <= 0 {
		return
	}
	var total int64
	dirSize := map[string]int64{}
	gz := map[string][]gzFile{}
	var stale []string
	err := filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		sz := info.Size()
		total += sz
		dir := filepath.Dir(p)
		dirSize[dir] += sz
		name := d.Name()
		if strings.HasSuffix(name, rotatingSuffix) && info.ModTime().Before(m.started) {
			stale = append(stale, p)
		}
		if strings.HasSuffix(name, ".gz.tmp") && info.ModTime().Before(m.started) {
			os.Remove(p) // compression interrupted by a crash: src is still there
			total -= sz
			dirSize[dir] -= sz
		}
		if strings.HasSuffix(name, ".gz") {
			base := name[:len(name)-3]
			n := 0
			if k := strings.LastIndexByte(base, '.'); k >= 0 {
				n, _ = strconv.Atoi(base[k+1:])
			}
			gz[dir] = append(gz[dir], gzFile{path: p, size: sz, n: n, mod: info.ModTime().UnixNano()})
		}
		return nil
	})
	if err != nil {
		m.log.Warn("log dir size", "dir", m.dir, "err", err)
	}
	for _, s := range stale {
		base := strings.TrimSuffix(s, rotatingSuffix)
		if k := strings.LastIndexByte(base, '.'); k > 0 {
			base = base[:k] // "<file>.<seq>.rotating"
		}
		m.compress(rotJob{src: s, base: base})
	}
	if total <= m.budget.High {
		m.warned = false
		return
	}
	for _, l := range gz {
		sort.Slice(l, func(i, j int) bool {
			if l[i].mod != l[j].mod {
				return l[i].mod < l[j].mod
			}
			return l[i].n < l[j].n
		})
	}
	for total >= m.budget.Low {
		best := ""
		for d, l := range gz {
			if len(l) > 0 && (best == "" || dirSize[d] > dirSize[best] || dirSize[d] == dirSize[best] && d < best) {
				best = d
			}
		}
		if best == "" {
			if !m.warned {
				m.log.Warn("log dir over budget with nothing left to delete", "dir", m.dir, "size", total, "low", m.budget.Low)
				m.warned = true
			}
			return
		}
		f := gz[best][0]
		gz[best] = gz[best][1:]
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("log cleanup", "file", f.path, "err", err)
			continue
		}
		m.deleted.Add(1)
		total -= f.size
		dirSize[best] -= f.size
	}
}
