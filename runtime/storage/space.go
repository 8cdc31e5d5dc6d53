package storage

import (
	"fmt"
	"sync"
)

// ledger is the one account of the space promised to writes in flight
// (object puts, state uploads). Checking the free space only when a
// write starts lets two concurrent 900 MiB uploads each see the same
// free space and together eat the GC reserve (issue 11, defect 8); the
// ledger subtracts what every other write may still add.
type ledger struct {
	mu   sync.Mutex
	held int64 // bytes promised and not yet written, over all reservations
}

// reservation is the space promised to one write: size bytes, of which
// written have landed on the disk (and so already left the free space).
// Its methods may be called from several goroutines (a put reads and
// writes in different ones).
type reservation struct {
	s       *Storage
	size    int64
	written int64
	done    bool
}

// reserve promises n bytes (n < 0: size unknown, nothing yet) to a new
// write, or fails with ErrNoSpace when the free space left after the
// ReservedPercent share and the other reservations is smaller.
func (s *Storage) reserve(n int64) (*reservation, error) {
	r := &reservation{s: s}
	if n <= 0 {
		return r, nil
	}
	if err := r.grow(n); err != nil {
		return nil, err
	}
	return r, nil
}

// grow promises m more bytes.
func (r *reservation) grow(m int64) error {
	l := &r.s.space
	l.mu.Lock()
	defer l.mu.Unlock()
	// statfs under the lock: a write landing between the statfs and the
	// sum would be counted twice (as used and as held), or not at all.
	u, err := r.s.Usage()
	if err != nil {
		return err
	}
	avail := int64(u.RealFree) - l.held
	if m > avail {
		if avail < 0 {
			avail = 0
		}
		return fmt.Errorf("%d bytes wanted, %d B free after the reserve and %d B promised to uploads in flight: %w",
			m, avail, l.held, ErrNoSpace)
	}
	l.held += m
	r.size += m
	return nil
}

// admit makes sure the first total bytes of the write are promised,
// growing the reservation past its declared size when the content is
// longer (or its size was unknown).
func (r *reservation) admit(total int64) error {
	r.s.space.mu.Lock()
	more := total - r.size
	r.s.space.mu.Unlock()
	if more <= 0 {
		return nil
	}
	return r.grow(more)
}

// wrote records m bytes written: they now show in the filesystem's
// free space, so the ledger stops holding them.
func (r *reservation) wrote(m int64) {
	l := &r.s.space
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.done {
		return
	}
	out := r.size - r.written
	if m > out {
		m = out
	}
	r.written += m
	l.held -= m
}

// release returns what the write did not use (completion or failure).
// Releasing twice is harmless.
func (r *reservation) release() {
	l := &r.s.space
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	l.held -= r.size - r.written
}

// Promised returns the bytes promised to writes in flight and not yet
// written.
func (s *Storage) Promised() int64 {
	s.space.mu.Lock()
	defer s.space.mu.Unlock()
	return s.space.held
}
