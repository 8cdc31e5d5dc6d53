//go:build !linux

package storage

import (
	"errors"
	"os"
)

// writeback is a no-op outside Linux: the final fsync does all the work.
type writeback struct{}

func newWriteback(*os.File) *writeback { return &writeback{} }

func (*writeback) wrote(int) {}

// exchange is Linux-only (renameat2); callers fall back to two renames.
func exchange(a, b string) error { return errors.ErrUnsupported }

// setDirect: direct I/O is only used on Linux.
func setDirect(*os.File, bool) error { return errors.ErrUnsupported }
