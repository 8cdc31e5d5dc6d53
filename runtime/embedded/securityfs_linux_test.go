package embedded

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// TestMountSecurityFS: SecurityFS mounts the kernel's securityfs (with its
// "lsm" list) once, however often INIT asks.
func TestMountSecurityFS(t *testing.T) {
	testenv.NeedRoot(t, "mounts securityfs")
	target := filepath.Join(t.TempDir(), "sys", "kernel", "security")
	for i := 0; i < 2; i++ {
		m := SecurityFS
		m.Target = target
		if err := m.Do(); err != nil {
			if i == 0 && strings.Contains(err.Error(), "no such device") {
				testenv.Skipf(t, "kernel without securityfs: %v", err)
			}
			t.Fatalf("MountSecurityFS #%d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for unix.Unmount(target, unix.MNT_DETACH) == nil {
		}
	})
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == target {
			n++
			if !strings.Contains(l, " - securityfs ") {
				t.Errorf("mount on %s is not securityfs: %s", target, l)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, target)
	}
	if _, err := os.Stat(filepath.Join(target, "lsm")); err != nil {
		t.Errorf("securityfs without its lsm file: %v", err)
	}
}
