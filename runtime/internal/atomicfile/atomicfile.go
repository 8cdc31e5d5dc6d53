// Package atomicfile replaces files so that a crash leaves either the old
// or the new content, never a mix: the data goes to a temp file in the
// same directory, which is fsynced, renamed over the target, and the
// directory is fsynced.
//
//	err := atomicfile.Write("/storage/boot/uboot.txt", env, 0o644)
//
// It is shared by the runtime packages that keep small state files
// (config, metadata, pvtx, bootloader).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data and mode perm. The temp file is named
// ".<base>.tmp*" in path's directory; it is removed on failure.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteTemp(path, "."+filepath.Base(path)+".tmp*", data, perm)
}

// WriteTemp is Write with the temp file named by pattern (as for
// os.CreateTemp), for directories whose readers skip or clean up a
// reserved prefix.
func WriteTemp(path, pattern string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is only durable once the directory is on disk too.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
