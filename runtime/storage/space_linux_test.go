package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
)

// tmpfsStorage opens a storage on a fresh tmpfs of size (root only): a
// real disk with a fixed size.
func tmpfsStorage(t *testing.T, size string) *Storage {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConcurrentPutsKeepReserve: two object puts that each fit the free
// space but not together. The first is paused half-way; the second,
// declaring its size, must be refused at once instead of both passing a
// start-time check and eating the GC reserve (issue 11, defect 8).
func TestConcurrentPutsKeepReserve(t *testing.T) {
	s := tmpfsStorage(t, "16m")
	s.ReservedPercent = 25 // 4 MiB reserve: 12 MiB really free
	a := bytes.Repeat([]byte("a"), 7<<20)
	b := bytes.Repeat([]byte("b"), 7<<20)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.PutObjectSize(shaOf(a), int64(len(a)), pr)
		done <- err
	}()
	if _, err := pw.Write(a[:2<<20]); err != nil { // the put is under way
		t.Fatal(err)
	}
	if _, err := s.PutObjectSize(shaOf(b), int64(len(b)), bytes.NewReader(b)); !errors.Is(err, ErrNoSpace) {
		t.Errorf("second PutObjectSize(7 MiB) while 7 MiB are promised = %v, want ErrNoSpace", err)
	}
	if _, err := pw.Write(a[2<<20:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("first PutObjectSize = %v", err)
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Free < u.Reserved {
		t.Errorf("free space %d after the puts, below the GC reserve %d", u.Free, u.Reserved)
	}
	if n := s.Promised(); n != 0 {
		t.Errorf("Promised() after the puts = %d, want 0", n)
	}
	// Undeclared sizes are admitted chunk by chunk against the same ledger.
	if _, err := s.PutObject(shaOf(b), bytes.NewReader(b)); !errors.Is(err, ErrNoSpace) {
		t.Errorf("PutObject(7 MiB) with 5 MiB really free = %v, want ErrNoSpace", err)
	}
	if names := objectDirNames(t, s); len(names) != 1 {
		t.Errorf("objects/ = %v, want only the first object", names)
	}
	if n := s.Promised(); n != 0 {
		t.Errorf("Promised() after a refused put = %d, want 0", n)
	}
}

// TestStateUploadReserves: a state upload is spooled to storage and its
// declared size reserved like an object's.
func TestStateUploadReserves(t *testing.T) {
	s := tmpfsStorage(t, "8m")
	s.ReservedPercent = 0
	u, err := s.NewStateUpload(6 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := s.NewStateUpload(6 << 20); !errors.Is(err, ErrNoSpace) {
		t.Errorf("NewStateUpload(6 MiB) with 6 of 8 MiB promised = %v, want ErrNoSpace", err)
	}
	u.Close()
	if n := s.Promised(); n != 0 {
		t.Errorf("Promised() after Close = %d, want 0", n)
	}
	if names := dotEntries(t, s.trailsDir()); len(names) != 0 {
		t.Errorf("trails/ after Close = %v, want no spool file", names)
	}
}
