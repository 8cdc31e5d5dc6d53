package pvtx

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// statfsType stores the file system type of path in t.
func statfsType(path string, t *int64) error {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return err
	}
	*t = int64(s.Type)
	return nil
}

// TestDeployAcrossFileSystems copies objects when a hard link is not
// possible (object directory on another file system).
func TestDeployAcrossFileSystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "pvtx-test-")
	if err != nil {
		// The machine's layout, not a missing tool: plain skip.
		t.Skip("no /dev/shm")
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	e := newCLIEnv(t)
	var a, b int64
	if statfsType(shm, &a) != nil || statfsType(e.root, &b) != nil || a == b {
		// The machine's layout (TMPDIR on tmpfs), not a missing tool.
		t.Skip("/dev/shm is on the same file system as the temp dir")
	}
	e.ok(nil, "begin", "empty", shm)
	e.ok(gz(makeTar(t, member{name: "json", body: []byte(`{"f":"` + shaOf([]byte("f")) + `"}`)}, obj("f"))), "add", "-")
	e.ok(nil, "deploy", e.path("trail"))
	if got := readFile(t, e.path("trail", "f")); got != "f" {
		t.Errorf("copied object = %q, want f", got)
	}
}

// TestLockContext: a pvtx waiting for another one's lock gives up when
// its context ends, and gets the lock once it is free.
func TestLockContext(t *testing.T) {
	tx, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := tx.Lock()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		u, err := tx.LockContext(ctx)
		if err == nil {
			u()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("LockContext while locked = %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LockContext did not give up when its context ended")
	}
	unlock()
	u, err := tx.LockContext(context.Background())
	if err != nil {
		t.Fatalf("LockContext after unlock = %v", err)
	}
	u()
}
