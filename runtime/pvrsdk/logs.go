package pvrsdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LogQuery is a request of the logs API:
//
//	/cgi-bin/logs?rev=<rev>&source=<platform>&tail=true&follow=true&tailn=<n>
type LogQuery struct {
	Rev    string // default "current"
	Source string // a platform name; default "pantavisor"
	Tail   bool
	Follow bool // only with Tail, as upstream
	TailN  int  // lines of a tail; default 10
}

// maxTailN bounds tailn; maxTailBytes how far back a tail reads.
const (
	maxTailN     = 100000
	maxTailBytes = 8 << 20
)

// ParseLogQuery reads the query of the logs API. Names that could leave
// the log tree are refused.
func ParseLogQuery(v url.Values) (LogQuery, error) {
	q := LogQuery{Rev: v.Get("rev"), Source: v.Get("source"), TailN: 10}
	if q.Rev == "" {
		q.Rev = "current"
	}
	if q.Source == "" {
		q.Source = "pantavisor"
	}
	if !validRev(q.Rev) {
		return q, fmt.Errorf("rev %q: not a revision name", q.Rev)
	}
	if !validElem(q.Source) {
		return q, fmt.Errorf("source %q: not a platform name", q.Source)
	}
	var err error
	if q.Tail, err = boolParam(v, "tail"); err != nil {
		return q, err
	}
	if q.Follow, err = boolParam(v, "follow"); err != nil {
		return q, err
	}
	q.Follow = q.Follow && q.Tail
	if s := v.Get("tailn"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxTailN {
			return q, fmt.Errorf("tailn %q: want 0-%d", s, maxTailN)
		}
		q.TailN = n
	}
	return q, nil
}

func boolParam(v url.Values, k string) (bool, error) {
	switch v.Get(k) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("%s %q: want true or false", k, v.Get(k))
}

// validElem checks one path element of the log tree.
func validElem(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	return !strings.ContainsAny(s, "/\\\x00")
}

// logFiles lists the regular files of a source, sorted (WalkDir order).
func (s *Server) logFiles(q LogQuery) ([]string, error) {
	root := filepath.Join(s.o.LogDir, filepath.FromSlash(q.Rev), q.Source)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q, err := ParseLogQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	files, err := s.logFiles(q)
	if errors.Is(err, fs.ErrNotExist) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("no logs of %s for revision %s", q.Source, q.Rev)})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	offsets := make(map[string]int64, len(files))
	for _, f := range files {
		off, err := writeLog(w, f, q)
		if err != nil {
			s.o.Log.Warn("logs", "file", f, "err", err)
		}
		offsets[f] = off
	}
	if !q.Follow {
		return
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		// New files of the source (a container started) join the follow.
		if now, err := s.logFiles(q); err == nil {
			for _, f := range now {
				if _, ok := offsets[f]; !ok {
					offsets[f] = 0
				}
			}
		}
		wrote := false
		for f, off := range offsets {
			n, err := copyFrom(w, f, off)
			offsets[f] = off + n
			wrote = wrote || n > 0
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return
			}
		}
		if wrote {
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// writeLog writes a file (or its tail) and returns the offset reached.
func writeLog(w io.Writer, name string, q LogQuery) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if !q.Tail {
		n, err := io.Copy(w, io.LimitReader(f, size))
		return n, err
	}
	start := max(0, size-maxTailBytes)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	_, err = w.Write(lastLines(buf, q.TailN))
	return size, err
}

// lastLines returns the last n lines of b (a final line without newline
// counts).
func lastLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	i := end
	for k := 0; k < n; k++ {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return b
		}
		i = j
	}
	return b[i+1:]
}

// copyFrom writes what name holds past off.
func copyFrom(w io.Writer, name string, off int64) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= off {
		return 0, err
	}
	return io.Copy(w, io.NewSectionReader(f, off, fi.Size()-off))
}
