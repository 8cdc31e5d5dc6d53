package pvtx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// member is one tar member of a test package.
type member struct {
	name     string
	body     []byte
	typ      byte // 0 = regular
	linkname string
	size     int64 // header size override (0 = len(body))
}

func obj(content string) member {
	return member{name: "objects/" + shaOf([]byte(content)), body: []byte(content)}
}

func makeTar(t testing.TB, ms ...member) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: m.typ, Linkname: m.linkname, Format: tar.FormatUSTAR}
		if m.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if m.typ != 0 && m.typ != tar.TypeReg {
			h.Size = 0
		}
		if m.size != 0 {
			h.Size = m.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(m.body)
		}
	}
	if err := tw.Close(); err != nil && !strings.Contains(err.Error(), "missed writing") {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func bz2(t testing.TB, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("bzip2"); err != nil {
		testenv.Skipf(t, "no bzip2 binary (Debian bzip2)")
	}
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sig returns a pvs@2 signature value covering include/exclude.
func sig(include, exclude []string) string {
	hdr, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "PVS", "pvs": map[string]any{"include": include, "exclude": exclude}})
	v, _ := json.Marshal(map[string]string{"#spec": "pvs@2", "protected": base64.RawURLEncoding.EncodeToString(hdr), "signature": "c2ln"})
	return string(v)
}

// memSink collects objects in memory.
type memSink struct{ objs map[string][]byte }

func (s *memSink) PutObject(_ context.Context, sha string, _ int64, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.objs == nil {
		s.objs = map[string][]byte{}
	}
	s.objs[sha] = b
	return nil
}

// ctrlServer is a minimal pv-ctrl for remote transactions.
type ctrlServer struct {
	sock string

	mu      sync.Mutex
	steps   map[string][]byte // "current" and "locals/<n>"
	objects map[string][]byte
	puts    int
}

func newCtrlServer(t *testing.T, current string) *ctrlServer {
	t.Helper()
	s := &ctrlServer{
		sock:    filepath.Join(t.TempDir(), "pv-ctrl"),
		steps:   map[string][]byte{"current": []byte(current)},
		objects: map[string][]byte{},
	}
	ln, err := net.Listen("unix", s.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"Error":%q}`, msg)
}

func (s *ctrlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host != "localhost" && r.Host != "" {
		http.Error(w, "bad host", 400)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := r.URL.Path
	switch {
	case r.Method == "GET" && strings.HasPrefix(p, "/steps/"):
		b, ok := s.steps[strings.TrimPrefix(p, "/steps/")]
		if !ok {
			apiError(w, 404, "Resource does not exist")
			return
		}
		w.Write(b)
	case r.Method == "PUT" && strings.HasPrefix(p, "/objects/"):
		sha := strings.TrimPrefix(p, "/objects/")
		if r.ContentLength < 0 {
			apiError(w, 400, "missing Content-Length")
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil || int64(len(b)) != r.ContentLength {
			apiError(w, 400, "short body")
			return
		}
		if shaOf(b) != sha {
			apiError(w, 422, "Object has bad checksum")
			return
		}
		s.objects[sha] = b
		s.puts++
	case r.Method == "PUT" && strings.HasPrefix(p, "/steps/locals/"):
		b, err := io.ReadAll(r.Body)
		if err != nil {
			apiError(w, 400, "short body")
			return
		}
		if !json.Valid(b) {
			apiError(w, 422, "Parser: State JSON has bad format")
			return
		}
		s.steps[strings.TrimPrefix(p, "/steps/")] = b
	default:
		apiError(w, 400, "unknown endpoint: "+p)
	}
}

func (s *ctrlServer) step(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.steps[name])
}

func (s *ctrlServer) object(sha string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[sha]
	return b, ok
}

func isErr(err, target error) bool { return errors.Is(err, target) }
