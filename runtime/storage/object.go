package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// copyBufSize is the chunk size of object copies: large enough that
// syscall and hashing overhead per chunk is negligible.
const copyBufSize = 1 << 20

// directAlign is the buffer, offset and length alignment direct I/O needs.
const directAlign = 4096

// bufPool holds copy buffers aligned for direct I/O.
var bufPool = sync.Pool{New: func() any {
	raw := make([]byte, copyBufSize+directAlign)
	off := (directAlign - int(uintptr(unsafe.Pointer(&raw[0]))%directAlign)) % directAlign
	b := raw[off : off+copyBufSize : off+copyBufSize]
	return &b
}}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Sha  string
	Size int64
}

// ValidSha reports whether sha is an object name: exactly 64 lowercase
// hex digits.
func ValidSha(sha string) bool {
	if len(sha) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkSha(sha string) error {
	if !ValidSha(sha) {
		return fmt.Errorf("%w %q: want 64 lowercase hex digits", ErrBadSha, sha)
	}
	return nil
}

// ObjectPath returns the path of object sha (objects/<sha>). It does not
// validate sha; the other object methods do.
func (s *Storage) ObjectPath(sha string) string { return filepath.Join(s.objectsDir(), sha) }

// HasObject reports whether a regular file named sha is in the object
// store. It does not verify the content; see VerifyObject.
func (s *Storage) HasObject(sha string) bool {
	if !ValidSha(sha) {
		return false
	}
	fi, err := os.Stat(s.ObjectPath(sha))
	return err == nil && fi.Mode().IsRegular()
}

// OpenObject opens object sha for reading.
func (s *Storage) OpenObject(sha string) (*os.File, error) {
	if err := checkSha(sha); err != nil {
		return nil, err
	}
	return os.Open(s.ObjectPath(sha))
}

// Objects lists the stored objects sorted by sha. Temp files and other
// names that are not a sha are skipped.
func (s *Storage) Objects() ([]ObjectInfo, error) {
	ents, err := os.ReadDir(s.objectsDir())
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	out := make([]ObjectInfo, 0, len(ents))
	for _, e := range ents {
		if !ValidSha(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list objects: %w", err)
		}
		out = append(out, ObjectInfo{Sha: e.Name(), Size: fi.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sha < out[j].Sha })
	return out, nil
}

// VerifyObject re-hashes object sha and returns an error wrapping
// ErrBadChecksum when its content does not match its name.
func (s *Storage) VerifyObject(sha string) error {
	f, err := s.OpenObject(sha)
	if err != nil {
		return fmt.Errorf("verify object: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if _, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{f}, *bp); err != nil {
		return fmt.Errorf("verify object %s: %w", sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("verify object %s: content hashes to %s: %w", sha, got, ErrBadChecksum)
	}
	return nil
}

// RemoveUnreferenced deletes object sha when no trail links it any more
// (its link count is 1) and returns the bytes freed, 0 when it is still
// linked or absent.
func (s *Storage) RemoveUnreferenced(sha string) (int64, error) {
	if err := checkSha(sha); err != nil {
		return 0, err
	}
	p := s.ObjectPath(sha)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("remove object: %w", err)
	}
	if nlink(fi) > 1 {
		return 0, nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("remove object: %w", err)
	}
	return fi.Size(), nil
}

func nlink(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// PutObject stores the content read from r as object sha and returns the
// number of bytes read from r; it is PutObjectSize with an unknown size.
func (s *Storage) PutObject(sha string, r io.Reader) (int64, error) {
	return s.PutObjectSize(sha, -1, r)
}

// PutObjectSize stores the content read from r, of size bytes (< 0:
// unknown), as object sha and returns the number of bytes read from r.
//
// The size is reserved in the storage's space ledger before anything is
// read, so concurrent puts cannot together promise more than the free
// space left after ReservedPercent: one that does not fit fails at once
// with ErrNoSpace. Content beyond the declared size must fit too.
//
// The content is hashed while it is written to a temp file <sha>.tmp*
// in objects/, which is fsynced and only then given its final name, so a
// failed, interrupted or short put leaves nothing behind. A content that
// does not hash to sha fails with ErrBadChecksum. An existing valid
// object is never replaced: r is then drained (and checked) instead.
// A refusal of Reserve or a full filesystem also fail with ErrNoSpace.
func (s *Storage) PutObjectSize(sha string, size int64, r io.Reader) (int64, error) {
	if err := checkSha(sha); err != nil {
		return 0, fmt.Errorf("put object: %w", err)
	}
	if s.HasObject(sha) && s.VerifyObject(sha) == nil {
		n, err := s.drain(sha, r)
		if err != nil {
			return n, fmt.Errorf("put object %s: %w", sha, err)
		}
		return n, nil
	}
	res, err := s.reserve(size)
	if err != nil {
		return 0, fmt.Errorf("put object %s: %w", sha, err)
	}
	defer res.release()
	n, err := s.putNew(sha, r, res)
	if err != nil {
		return n, fmt.Errorf("put object %s: %w", sha, err)
	}
	return n, nil
}

// drain reads r to its end for an object that is already stored and
// checks that it carried the same content.
func (s *Storage) drain(sha string, r io.Reader) (int64, error) {
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{r}, *bp)
	if err != nil {
		return n, fmt.Errorf("read content: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return n, fmt.Errorf("content hashes to %s: %w", got, ErrBadChecksum)
	}
	return n, nil
}

func (s *Storage) putNew(sha string, r io.Reader, res *reservation) (n int64, err error) {
	dir := s.objectsDir()
	f, err := os.CreateTemp(dir, sha+".tmp")
	if err != nil {
		return 0, noSpace(err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	n, err = s.copyObject(f, h, r, res)
	if err != nil {
		return n, err
	}
	var sum [sha256.Size]byte
	if got := h.Sum(sum[:0]); !bytes.Equal(got, mustHex(sha)) {
		return n, fmt.Errorf("content hashes to %x: %w", got, ErrBadChecksum)
	}
	if err = f.Chmod(0o644); err != nil {
		return n, err
	}
	if err = f.Sync(); err != nil {
		return n, noSpace(err)
	}
	if err = f.Close(); err != nil {
		return n, noSpace(err)
	}
	if err = s.install(tmp, sha); err != nil {
		return n, err
	}
	return n, syncDir(dir)
}

// install gives the verified temp file its final name without ever
// replacing a valid object: link(2) fails when the name exists.
func (s *Storage) install(tmp, sha string) error {
	final := s.ObjectPath(sha)
	err := os.Link(tmp, final)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		if s.VerifyObject(sha) == nil {
			return os.Remove(tmp) // a concurrent put won; same content
		}
		s.Log.Warn("replacing corrupt object", "sha", sha)
	default:
		s.Log.Debug("link failed, renaming", "sha", sha, "err", err)
	}
	return os.Rename(tmp, final)
}

// copyObject copies r into f and h, within the reservation res and the
// Reserve hook. An object that fits in one buffer is
// copied inline; a larger one goes through a three-stage pipeline (read,
// hash, write) over a few pooled buffers so that hashing, page-cache
// copies and writeback overlap: the put runs at the speed of sha256
// instead of the sum of the three.
func (s *Storage) copyObject(f *os.File, h hash.Hash, r io.Reader, res *reservation) (int64, error) {
	select {
	case pipeSlots <- struct{}{}:
		defer func() { <-pipeSlots }()
	default:
		return s.streamCopy(f, h, r, res)
	}
	bp := bufPool.Get().(*[]byte)
	m, rerr := io.ReadFull(r, *bp)
	if err := s.admit(res, 0, m); err != nil {
		bufPool.Put(bp)
		return 0, err
	}
	if rerr == nil {
		return s.pipeCopy(f, h, r, res, bp)
	}
	defer bufPool.Put(bp)
	if rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		return 0, fmt.Errorf("read content: %w", rerr)
	}
	h.Write((*bp)[:m])
	if _, err := f.Write((*bp)[:m]); err != nil {
		return 0, noSpace(err)
	}
	res.wrote(int64(m))
	return int64(m), nil
}

// pipeSlots bounds the puts copying through the pipeline's large
// buffers (pipeBufs × copyBufSize each): the daemon's memory must not
// grow with the number of concurrent uploads (issue 11, defect 7: 16
// uploads took 78 MiB). The others stream through one small buffer,
// slower but in constant memory; none waits for a slot, so a client
// that trickles its body cannot stall the others.
var pipeSlots = make(chan struct{}, 2)

// streamBufSize is the buffer of a put without a pipeline slot.
const streamBufSize = 64 << 10

// streamCopy copies r into f and h through one small buffer.
func (s *Storage) streamCopy(f *os.File, h hash.Hash, r io.Reader, res *reservation) (int64, error) {
	buf := make([]byte, streamBufSize)
	var n int64
	for {
		m, rerr := io.ReadFull(r, buf)
		if err := s.admit(res, n, m); err != nil {
			return n, err
		}
		if m > 0 {
			h.Write(buf[:m])
			if _, err := f.Write(buf[:m]); err != nil {
				return n, noSpace(err)
			}
			res.wrote(int64(m))
			n += int64(m)
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return n, nil
		case rerr != nil:
			return n, fmt.Errorf("read content: %w", rerr)
		}
	}
}

// admit checks that m more bytes after n may be stored.
func (s *Storage) admit(res *reservation, n int64, m int) error {
	if m == 0 {
		return nil
	}
	if err := res.admit(n + int64(m)); err != nil {
		return err
	}
	if s.Reserve != nil {
		if err := s.Reserve(int64(m)); err != nil {
			return fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
	}
	return nil
}

type chunk struct {
	b *[]byte
	n int
}

// pipeBufs is the number of buffers in flight in pipeCopy.
const pipeBufs = 4

// pipeCopy runs read (this goroutine) → hash → write; first holds the
// first chunk, already read and full.
func (s *Storage) pipeCopy(f *os.File, h hash.Hash, r io.Reader, res *reservation, first *[]byte) (int64, error) {
	free := make(chan *[]byte, pipeBufs)
	for i := 1; i < pipeBufs; i++ {
		free <- bufPool.Get().(*[]byte)
	}
	toHash := make(chan chunk, pipeBufs)
	toWrite := make(chan chunk, pipeBufs)
	done := make(chan error, 1)
	var failed atomic.Bool
	go func() {
		for c := range toHash {
			h.Write((*c.b)[:c.n])
			toWrite <- c
		}
		close(toWrite)
	}()
	go func() {
		var err error
		w := newObjectWriter(f)
		for c := range toWrite {
			if err == nil {
				if err = w.write((*c.b)[:c.n]); err != nil {
					failed.Store(true)
				} else {
					res.wrote(int64(c.n))
				}
			}
			free <- c.b
		}
		done <- err
	}()
	finish := func(readErr error) (int64, error) {
		close(toHash)
		werr := <-done
		for i := 0; i < pipeBufs; i++ {
			bufPool.Put(<-free)
		}
		if readErr != nil {
			return 0, readErr
		}
		return 0, werr
	}
	n := int64(len(*first))
	toHash <- chunk{first, len(*first)}
	for {
		if failed.Load() {
			return finish(nil)
		}
		b := <-free
		m, rerr := io.ReadFull(r, *b)
		if err := s.admit(res, n, m); err != nil {
			free <- b
			return finish(err)
		}
		if m > 0 {
			toHash <- chunk{b, m}
			n += int64(m)
		} else {
			free <- b
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			_, err := finish(nil)
			return n, err
		case rerr != nil:
			return finish(fmt.Errorf("read content: %w", rerr))
		}
	}
}

// objectWriter writes a large object with direct I/O where the
// filesystem allows it: the data skips the page cache, which saves the
// kernel's copy (about a third of the CPU time of a put) and leaves no
// dirty pages for the final fsync. Unaligned tails and filesystems
// without direct I/O go through the page cache, with writeback started
// early.
type objectWriter struct {
	f      *os.File
	direct bool
	wb     *writeback
}

func newObjectWriter(f *os.File) *objectWriter {
	return &objectWriter{f: f, direct: setDirect(f, true) == nil, wb: newWriteback(f)}
}

func (w *objectWriter) write(b []byte) error {
	if w.direct && len(b)%directAlign != 0 {
		w.buffered()
	}
	n, err := w.f.Write(b)
	if err != nil && w.direct && errors.Is(err, syscall.EINVAL) {
		w.buffered() // the filesystem took the flag but not the I/O
		var m int
		m, err = w.f.Write(b[n:])
		n += m
	}
	if err != nil {
		return noSpace(err)
	}
	if !w.direct {
		w.wb.wrote(n)
	}
	return nil
}

func (w *objectWriter) buffered() {
	w.direct = false
	_ = setDirect(w.f, false) // buffered writes work either way
}

// noSpace marks errors caused by a full filesystem with ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

func mustHex(sha string) []byte {
	b, _ := hex.DecodeString(sha) // callers validated sha
	return b
}

// isTemp reports whether name is a temp file of PutObject.
func isTempObject(name string) bool {
	return len(name) > 64 && ValidSha(name[:64]) && strings.HasPrefix(name[64:], ".tmp")
}
