package pvtx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

// objectStore is an ObjectSink that also takes already unpacked objects
// (queue directories) and knows when a batch is complete.
type objectStore interface {
	ObjectSink
	// commit makes the objects of the batch visible.
	commit() error
	// rollback drops whatever commit did not publish.
	rollback()
}

// localStore writes objects into a directory. Objects are staged in temp
// files next to their final name and only renamed into place by commit,
// so a package that fails half-way leaves the directory as it was.
type localStore struct {
	dir    string
	buf    []byte
	staged map[string]string // sha → temp file
}

func newLocalStore(dir string, bufSize int) *localStore {
	return &localStore{dir: dir, buf: make([]byte, bufSize), staged: map[string]string{}}
}

// validObject reports whether name exists with the content sha.
func validObject(name, sha string, buf []byte) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == sha
}

// PutObject implements ObjectSink.
func (s *localStore) PutObject(ctx context.Context, sha string, size int64, r io.Reader) error {
	final := filepath.Join(s.dir, sha)
	if _, ok := s.staged[sha]; ok || validObject(final, sha, s.buf) {
		// Already there: still read it, so a wrong content is reported.
		_, err := io.CopyBuffer(io.Discard, r, s.buf)
		return err
	}
	f, err := os.CreateTemp(s.dir, "."+sha+".pvtx-tmp*")
	if err != nil {
		return fmt.Errorf("store object %s: %w", sha, err)
	}
	tmp := f.Name()
	_, err = io.CopyBuffer(f, r, s.buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store object %s: %w", sha, err)
	}
	s.staged[sha] = tmp
	return nil
}

func (s *localStore) commit() error {
	for sha, tmp := range s.staged {
		if err := os.Rename(tmp, filepath.Join(s.dir, sha)); err != nil {
			return fmt.Errorf("store object %s: %w", sha, err)
		}
		delete(s.staged, sha)
	}
	return syncDir(s.dir)
}

func (s *localStore) rollback() {
	for sha, tmp := range s.staged {
		os.Remove(tmp)
		delete(s.staged, sha)
	}
}

// remoteStore uploads objects with PUT /objects/<sha>. pv-ctrl verifies
// every object itself and deletes it on a mismatch; an object that did
// arrive is content-addressed and harmless, so there is nothing to roll
// back.
type remoteStore struct {
	c *client.Client
}

// PutObject implements ObjectSink.
func (s *remoteStore) PutObject(ctx context.Context, sha string, size int64, r io.Reader) error {
	// The verifier ends r with an error instead of the last bytes on a
	// mismatch, which aborts the upload. Keep that error over the
	// transport's.
	var verr error
	body := readerFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		if err != nil && !errors.Is(err, io.EOF) {
			verr = err
		}
		return n, err
	})
	resp, err := s.c.Do(ctx, "PUT", "/objects/"+sha, body, size)
	if verr != nil {
		return verr
	}
	if err != nil {
		return fmt.Errorf("upload object %s: %w", sha, err)
	}
	resp.Body.Close()
	return nil
}

func (s *remoteStore) commit() error { return nil }
func (s *remoteStore) rollback()     {}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// putFile sends an unpacked object file (a queue entry's objects/<sha>)
// to the store, verifying it on the way.
func putFile(ctx context.Context, st ObjectSink, name, sha string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s: not a regular file", ErrBadPackage, name)
	}
	return st.PutObject(ctx, sha, fi.Size(), newVerifier(f, sha, fi.Size()))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
