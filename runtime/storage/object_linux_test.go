package storage

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// TestPutObjectDiskFull fills a real 2 MiB tmpfs (root only).
func TestPutObjectDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		testenv.Skipf(t, "mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.ReservedPercent = 0
	data := bytes.Repeat([]byte("full"), 1<<20) // 4 MiB
	if _, err := s.PutObject(shaOf(data), bytes.NewReader(data)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("PutObject(4 MiB into 2 MiB) = %v, want ErrNoSpace", err)
	}
	if names := objectDirNames(t, s); len(names) != 0 {
		t.Errorf("objects/ after full disk = %v, want empty", names)
	}
	small := []byte("still fits")
	if _, err := s.PutObject(shaOf(small), bytes.NewReader(small)); err != nil {
		t.Errorf("PutObject(small) after failure = %v", err)
	}
}
