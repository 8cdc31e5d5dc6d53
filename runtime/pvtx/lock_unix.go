//go:build unix

package pvtx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often a waiting LockContext retries.
const lockPoll = 50 * time.Millisecond

// Lock takes an exclusive lock on PVTXDIR (the file .lock in it) so that
// concurrent pvtx invocations, e.g. from the pvtx web API, run one at a
// time. It blocks until the lock is free; call the returned func to
// release it.
func (t *Tx) Lock() (func(), error) { return t.LockContext(context.Background()) }

// LockContext is Lock that gives up when ctx ends, so a pvtx waiting for
// another one can still be interrupted.
func (t *Tx) LockContext(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(t.path(".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock state directory: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock state directory: %w", ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}
