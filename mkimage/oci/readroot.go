package oci

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxRootFile bounds what ReadInRoot reads (passwd and group files).
const maxRootFile = 4 << 20

// ReadInRoot reads the file name of a staged root file system as the
// container would see it: symbolic links resolve inside root (an
// absolute link target is relative to root), never out of it. A missing
// file wraps os.ErrNotExist.
func ReadInRoot(root, name string) ([]byte, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, root, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	defer unix.Close(fd)
	f, err := unix.Openat2(fd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("read %s in %s: %w", name, root, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, root, err)
	}
	file := os.NewFile(uintptr(f), name)
	defer file.Close()
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s in %s: not a regular file", name, root)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxRootFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, root, err)
	}
	if len(b) > maxRootFile {
		return nil, fmt.Errorf("read %s in %s: larger than %d bytes", name, root, maxRootFile)
	}
	return b, nil
}
