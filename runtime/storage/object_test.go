package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newStorage(t testing.TB) *Storage {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// objectDirNames lists objects/ so tests can assert nothing was left behind.
func objectDirNames(t *testing.T, s *Storage) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPutObject(t *testing.T) {
	s := newStorage(t)
	data := []byte("hello pantavisor")
	sha := shaOf(data)
	n, err := s.PutObject(sha, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("PutObject = %d, %v, want %d, nil", n, err, len(data))
	}
	got, err := os.ReadFile(s.ObjectPath(sha))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object content = %q, %v, want %q", got, err, data)
	}
	fi, _ := os.Stat(s.ObjectPath(sha))
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("object mode = %v, want 0644", fi.Mode().Perm())
	}
	if !s.HasObject(sha) {
		t.Errorf("HasObject(%s) = false, want true", sha)
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("VerifyObject = %v, want nil", err)
	}
	objs, err := s.Objects()
	if err != nil || len(objs) != 1 || objs[0] != (ObjectInfo{sha, int64(len(data))}) {
		t.Errorf("Objects() = %v, %v, want [{%s %d}]", objs, err, sha, len(data))
	}
	if names := objectDirNames(t, s); len(names) != 1 {
		t.Errorf("objects/ = %v, want only %s", names, sha)
	}
	f, err := s.OpenObject(sha)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(b, data) {
		t.Errorf("OpenObject content = %q, want %q", b, data)
	}
}

func TestPutObjectEmpty(t *testing.T) {
	s := newStorage(t)
	sha := shaOf(nil)
	if n, err := s.PutObject(sha, strings.NewReader("")); err != nil || n != 0 {
		t.Fatalf("PutObject(empty) = %d, %v, want 0, nil", n, err)
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("VerifyObject(empty) = %v", err)
	}
}

func TestPutObjectExisting(t *testing.T) {
	s := newStorage(t)
	data := []byte("same content")
	sha := shaOf(data)
	if _, err := s.PutObject(sha, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(s.ObjectPath(sha))
	r := bytes.NewReader(data)
	if n, err := s.PutObject(sha, r); err != nil || n != int64(len(data)) {
		t.Fatalf("second PutObject = %d, %v, want %d, nil", n, err, len(data))
	}
	if r.Len() != 0 {
		t.Errorf("reader left %d bytes, want drained", r.Len())
	}
	after, _ := os.Stat(s.ObjectPath(sha))
	if !os.SameFile(before, after) {
		t.Errorf("existing valid object was replaced")
	}
	// A wrong body for an existing object is drained, reported, and the
	// object stays intact.
	if _, err := s.PutObject(sha, strings.NewReader("other")); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("PutObject(existing, wrong body) = %v, want ErrBadChecksum", err)
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("existing object damaged: %v", err)
	}
}

func TestPutObjectReplacesCorrupt(t *testing.T) {
	s := newStorage(t)
	data := []byte("good")
	sha := shaOf(data)
	if err := os.WriteFile(s.ObjectPath(sha), []byte("rotten"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyObject(sha); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("VerifyObject(corrupt) = %v, want ErrBadChecksum", err)
	}
	if _, err := s.PutObject(sha, bytes.NewReader(data)); err != nil {
		t.Fatalf("PutObject over corrupt = %v", err)
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("VerifyObject after repair = %v", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestPutObjectBad(t *testing.T) {
	good := []byte("the real content")
	goodSha := shaOf(good)
	big := bytes.Repeat([]byte("x"), 3*copyBufSize+17)
	errBroken := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		sha  string
		r    io.Reader
		want error
	}{
		{"mismatch", shaOf([]byte("something else")), bytes.NewReader(good), ErrBadChecksum},
		{"short", goodSha, bytes.NewReader(good[:5]), ErrBadChecksum},
		{"long", goodSha, bytes.NewReader(append(good, '!')), ErrBadChecksum},
		{"interrupted", shaOf(big), &failingReader{data: big[:2*copyBufSize+3], err: errBroken}, errBroken},
		{"uppercase", strings.ToUpper(goodSha), bytes.NewReader(good), ErrBadSha},
		{"short sha", goodSha[:63], bytes.NewReader(good), ErrBadSha},
		{"non hex", strings.Repeat("g", 64), bytes.NewReader(good), ErrBadSha},
		{"traversal", "../" + goodSha[3:], bytes.NewReader(good), ErrBadSha},
		{"empty sha", "", bytes.NewReader(good), ErrBadSha},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStorage(t)
			_, err := s.PutObject(tc.sha, tc.r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("PutObject = %v, want %v", err, tc.want)
			}
			if names := objectDirNames(t, s); len(names) != 0 {
				t.Errorf("objects/ after failed put = %v, want empty", names)
			}
		})
	}
}

func TestPutObjectBadKeepsExisting(t *testing.T) {
	s := newStorage(t)
	data := []byte("precious")
	sha := shaOf(data)
	if _, err := s.PutObject(sha, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	// Make the existing object look corrupt-free but feed a broken stream:
	// nothing may replace it.
	if _, err := s.PutObject(sha, &failingReader{data: data[:3], err: io.ErrClosedPipe}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("PutObject(interrupted) = %v, want ErrClosedPipe", err)
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("existing object damaged: %v", err)
	}
	if names := objectDirNames(t, s); len(names) != 1 {
		t.Errorf("objects/ = %v, want only %s", names, sha)
	}
}

func TestPutObjectNoSpace(t *testing.T) {
	s := newStorage(t)
	data := bytes.Repeat([]byte("z"), 2*copyBufSize)
	var asked int64
	s.Reserve = func(n int64) error {
		asked += n
		if asked > copyBufSize {
			return errors.New("quota exceeded")
		}
		return nil
	}
	if _, err := s.PutObject(shaOf(data), bytes.NewReader(data)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("PutObject over quota = %v, want ErrNoSpace", err)
	}
	if names := objectDirNames(t, s); len(names) != 0 {
		t.Errorf("objects/ = %v, want empty", names)
	}
	// The whole disk reserved: nothing fits.
	s.Reserve = nil
	s.ReservedPercent = 100
	if _, err := s.PutObject(shaOf(data), bytes.NewReader(data)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("PutObject with 100%% reserved = %v, want ErrNoSpace", err)
	}
}

func TestRemoveUnreferenced(t *testing.T) {
	s := newStorage(t)
	data := []byte("linked")
	sha := shaOf(data)
	if _, err := s.PutObject(sha, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "l")
	if err := os.Link(s.ObjectPath(sha), link); err != nil {
		// The machine's layout (temp dirs on different file systems).
		t.Skipf("hard links across temp dirs: %v", err)
	}
	if n, err := s.RemoveUnreferenced(sha); err != nil || n != 0 || !s.HasObject(sha) {
		t.Fatalf("RemoveUnreferenced(linked) = %d, %v, want 0 and kept", n, err)
	}
	os.Remove(link)
	if n, err := s.RemoveUnreferenced(sha); err != nil || n != int64(len(data)) || s.HasObject(sha) {
		t.Fatalf("RemoveUnreferenced(unlinked) = %d, %v, want %d and removed", n, err, len(data))
	}
	if n, err := s.RemoveUnreferenced(sha); err != nil || n != 0 {
		t.Errorf("RemoveUnreferenced(absent) = %d, %v, want 0, nil", n, err)
	}
}

func TestUsage(t *testing.T) {
	s := newStorage(t)
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Total == 0 || u.Free > u.Total || u.Reserved != u.Total/100*5+u.Total%100*5/100 || u.RealFree != u.Free-u.Reserved {
		t.Errorf("Usage() = %+v, inconsistent", u)
	}
}

// patternReader yields n bytes of a cheap deterministic pattern.
type patternReader struct {
	block []byte
	off   int
	left  int64
}

func newPatternReader(n int64) *patternReader {
	b := make([]byte, copyBufSize+4093) // not a multiple of the buffer
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return &patternReader{block: b, left: n}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.block[r.off:])
		n += c
		r.off = (r.off + c) % len(r.block)
	}
	r.left -= int64(n)
	return n, nil
}

func BenchmarkPutObject1GiB(b *testing.B) {
	const size = 1 << 30
	h := sha256.New()
	io.Copy(h, newPatternReader(size))
	sha := hex.EncodeToString(h.Sum(nil))
	s := newStorage(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := s.PutObject(sha, newPatternReader(size)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(s.ObjectPath(sha))
		b.StartTimer()
	}
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the user+system CPU time of the process: on a loaded
// machine it tells how much work an operation costs when wall time no
// longer does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSha256Baseline1GiB hashes the same stream without storing
// it: the ceiling for BenchmarkPutObject1GiB on the same machine.
func BenchmarkSha256Baseline1GiB(b *testing.B) {
	const size = 1 << 30
	buf := make([]byte, copyBufSize)
	b.SetBytes(size)
	b.ReportAllocs()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, newPatternReader(size), buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

func TestPutObjectConcurrent(t *testing.T) {
	s := newStorage(t)
	data := bytes.Repeat([]byte("concurrent "), copyBufSize/5) // > 2 buffers
	sha := shaOf(data)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			_, err := s.PutObject(sha, bytes.NewReader(data))
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent PutObject = %v", err)
		}
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("VerifyObject = %v", err)
	}
	if names := objectDirNames(t, s); len(names) != 1 {
		t.Errorf("objects/ = %v, want only %s", names, sha)
	}
}

// TestPutObjectStreamed: with every pipeline slot taken, puts stream
// through one small buffer and store, check and refuse as the pipeline
// does.
func TestPutObjectStreamed(t *testing.T) {
	for range cap(pipeSlots) {
		pipeSlots <- struct{}{}
	}
	defer func() {
		for range cap(pipeSlots) {
			<-pipeSlots
		}
	}()
	s := newStorage(t)
	data := bytes.Repeat([]byte("streamed "), 400_000) // 3.6 MB: many buffers
	sha := shaOf(data)
	if n, err := s.PutObjectSize(sha, int64(len(data)), bytes.NewReader(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("PutObjectSize(streamed) = %d, %v", n, err)
	}
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("VerifyObject after a streamed put: %v", err)
	}
	bad := shaOf([]byte("other"))
	if _, err := s.PutObject(bad, bytes.NewReader(data)); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("streamed PutObject(wrong content) = %v, want ErrBadChecksum", err)
	}
	s.Reserve = func(int64) error { return errors.New("full") }
	if _, err := s.PutObject(shaOf(data[1:]), bytes.NewReader(data[1:])); !errors.Is(err, ErrNoSpace) {
		t.Errorf("streamed PutObject(refused by Reserve) = %v, want ErrNoSpace", err)
	}
	if names := objectDirNames(t, s); len(names) != 1 || names[0] != sha {
		t.Errorf("objects/ = %v, want only %s", names, sha)
	}
	if n := s.Promised(); n != 0 {
		t.Errorf("Promised() = %d, want 0", n)
	}
}
