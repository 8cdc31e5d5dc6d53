package storage

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// writebackStep is how much written data accumulates before writeback
// of it is started, so the final fsync finds little left to flush.
const writebackStep = 8 << 20

// writeback starts asynchronous writeback of a file as it grows.
type writeback struct {
	fd      int
	off     int64 // start of the range not yet handed to writeback
	pending int64
}

func newWriteback(f *os.File) *writeback { return &writeback{fd: int(f.Fd())} }

// wrote records n more bytes appended to the file.
func (w *writeback) wrote(n int) {
	w.pending += int64(n)
	if w.pending < writebackStep {
		return
	}
	// Best effort: an error only means the final fsync does all the work.
	_ = unix.SyncFileRange(w.fd, w.off, w.pending, unix.SYNC_FILE_RANGE_WRITE)
	w.off += w.pending
	w.pending = 0
}

// exchange atomically swaps the directory entries a and b; it fails
// with errors.ErrUnsupported where the filesystem cannot.
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.ENOTSUP):
		return fmt.Errorf("exchange %s %s: %w", a, b, errors.ErrUnsupported)
	}
	return &os.LinkError{Op: "exchange", Old: a, New: b, Err: err}
}

// setDirect turns O_DIRECT on or off for f.
func setDirect(f *os.File, on bool) error {
	fd := int(f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}
