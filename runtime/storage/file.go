package storage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomic writes the content of r to path through a temp file in
// the same directory that is fsynced, renamed over path, after which the
// directory is fsynced. Missing parent directories are created.
func writeFileAtomic(path string, r io.Reader, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp")
	if err != nil {
		return noSpace(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bp := bufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{r}, *bp)
	bufPool.Put(bp)
	if err != nil {
		return noSpace(err)
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return noSpace(err)
	}
	if err = f.Close(); err != nil {
		return noSpace(err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that renames and links in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
