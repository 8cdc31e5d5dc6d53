package pantavisor

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIdleThreadIO: the late checksum's thread, and only it, reads in
// the idle I/O class.
func TestIdleThreadIO(t *testing.T) {
	ioprio := func() uintptr {
		p, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, 1, uintptr(unix.Gettid()), 0)
		if e != 0 {
			t.Errorf("ioprio_get: %v", e)
		}
		return p
	}
	got := make(chan [2]uintptr)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := idleThreadIO(); err != nil {
			t.Errorf("idleThreadIO: %v", err)
		}
		got <- [2]uintptr{ioprio(), uintptr(unix.Gettid())}
	}()
	p := <-got
	if class := p[0] >> 13; class != 3 {
		t.Errorf("I/O class after idleThreadIO = %d, want 3 (idle)", class)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if tid := uintptr(unix.Gettid()); tid != p[1] && ioprio()>>13 == 3 {
		t.Errorf("another thread (%d) is in the idle I/O class too", tid)
	}
}
