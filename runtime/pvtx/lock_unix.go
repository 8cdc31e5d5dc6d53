//go:build unix

package pvtx

import (
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive lock on PVTXDIR (the file .lock in it) so that
// concurrent pvtx invocations, e.g. from the pvtx web API, run one at a
// time. It blocks until the lock is free; call the returned func to
// release it.
func (t *Tx) Lock() (func(), error) {
	f, err := os.OpenFile(t.path(".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	return func() { f.Close() }, nil
}
