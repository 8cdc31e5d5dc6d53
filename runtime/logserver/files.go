package logserver

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// checkEvery is how many writes pass between two directory size checks.
const checkEvery = 100

// maxOpenFiles bounds the descriptors one output keeps open.
const maxOpenFiles = 64

type logFile struct {
	f    *os.File
	w    *bufio.Writer
	size int64
	used uint64
}

// fileSet is the set of open, rotating log files of one output. It is owned
// by that output's goroutine.
type fileSet struct {
	maint   *maintainer // nil: no rotation
	rotSize int64
	log     *slog.Logger

	files  map[string]*logFile
	tick   uint64
	writes int
	seq    uint64
	failed bool           // last write failed (log once per failure streak)
	errors *atomic.Uint64 // Stats.WriteErrs
}

func newFileSet(s *Server) *fileSet {
	return &fileSet{maint: s.maint, rotSize: s.budget.RotSize, log: s.log, errors: &s.writeErrs,
		files: map[string]*logFile{}, seq: uint64(time.Now().UnixNano())}
}

func (s *fileSet) open(path string) (*logFile, error) {
	if lf := s.files[path]; lf != nil {
		return lf, nil
	}
	if len(s.files) >= maxOpenFiles {
		s.evict()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	lf := &logFile{f: f, w: bufio.NewWriterSize(f, 16<<10)}
	if st, err := f.Stat(); err == nil {
		lf.size = st.Size()
	}
	s.files[path] = lf
	return lf, nil
}

// evict closes the least recently used half of the open files.
func (s *fileSet) evict() {
	for len(s.files) >= maxOpenFiles/2 {
		var oldest string
		var min uint64 = ^uint64(0)
		for p, lf := range s.files {
			if lf.used < min {
				oldest, min = p, lf.used
			}
		}
		s.closeFile(oldest)
	}
}

func (s *fileSet) closeFile(path string) {
	lf := s.files[path]
	if lf == nil {
		return
	}
	lf.w.Flush()
	lf.f.Close()
	delete(s.files, path)
}

// write appends b to path, rotating the file once it reaches rotSize.
func (s *fileSet) write(path string, b []byte) {
	lf, err := s.open(path)
	if err == nil {
		_, err = lf.w.Write(b)
	}
	if err != nil {
		s.errors.Add(1)
		if !s.failed {
			s.log.Warn("log write", "file", path, "err", err)
			s.failed = true
		}
		s.closeFile(path)
		return
	}
	s.failed = false
	s.tick++
	lf.used = s.tick
	lf.size += int64(len(b))
	if s.maint == nil {
		return
	}
	if lf.size >= s.rotSize {
		s.rotate(path)
	}
	s.writes++
	if s.writes >= checkEvery {
		s.writes = 0
		s.maint.check()
	}
}

// rotate renames path away and queues its compression; when the
// maintainer is saturated the file keeps growing and is retried later.
func (s *fileSet) rotate(path string) {
	if len(s.maint.jobs) == cap(s.maint.jobs) {
		return
	}
	s.closeFile(path)
	s.seq++
	tmp := path + "." + strconv.FormatUint(s.seq, 10) + rotatingSuffix
	if err := os.Rename(path, tmp); err != nil {
		s.log.Warn("log rotation", "file", path, "err", err)
		return
	}
	if !s.maint.submit(rotJob{src: tmp, base: path}) {
		os.Rename(tmp, path)
	}
}

func (s *fileSet) flush() {
	for p, lf := range s.files {
		if err := lf.w.Flush(); err != nil {
			s.errors.Add(1)
			s.closeFile(p)
		}
	}
}

func (s *fileSet) closeAll() {
	for p := range s.files {
		s.closeFile(p)
	}
}
