package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxConfigDepth bounds directory recursion so a symlink loop in a _config
// tree ends in an error instead of filling the disk.
const maxConfigDepth = 64

// CopyConfig replaces dst with a copy of the directory src the way `cp -aL`
// would: symlinks are followed, modes, ownership and times are kept. A
// missing src leaves dst absent and returns nil (no overlay).
func CopyConfig(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("remove stale config overlay: %w", err)
		}
		return nil
	}
	tmp := dst + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove stale config overlay: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create configs dir: %w", err)
	}
	if err := copyTree(src, tmp, 0); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("copy config overlay %s: %w", src, err)
	}
	if err := os.RemoveAll(dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("remove old config overlay: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("install config overlay: %w", err)
	}
	return nil
}

func copyTree(src, dst string, depth int) error {
	if depth > maxConfigDepth {
		return fmt.Errorf("%s: nested deeper than %d (symlink loop?)", src, maxConfigDepth)
	}
	fi, err := os.Stat(src) // follows symlinks, like -L
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), depth+1); err != nil {
				return err
			}
		}
	case fi.Mode().IsRegular():
		if err := copyFile(src, dst); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unsupported file type %s", src, fi.Mode().Type())
	}
	return keepAttrs(dst, fi)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func keepAttrs(dst string, fi os.FileInfo) error {
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err := os.Chmod(dst, fi.Mode().Perm()|fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}
