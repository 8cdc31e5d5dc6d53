package builder

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCgoDir: the shared cgo directory is filled once and left as is by
// the next build (its files are never rewritten in place).
func TestCgoDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cgo")
	lib := []byte("\x7fELF not really")
	for i := 0; i < 2; i++ {
		if err := cgoDir(dir, lib); err != nil {
			t.Fatalf("cgoDir (%d): %v", i, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "lib", "liblxc.so"))
	if err != nil || string(got) != string(lib) {
		t.Fatalf("lib/liblxc.so = %q, %v", got, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "include", "lxc")); err != nil || l != "/usr/include/lxc" {
		t.Fatalf("include/lxc -> %q, %v", l, err)
	}
	pc, err := os.ReadFile(filepath.Join(dir, "pkgconfig", "lxc.pc"))
	if err != nil || string(pc) == "" {
		t.Fatalf("lxc.pc: %q, %v", pc, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".tmp-*"))
	if len(left) > 0 {
		t.Fatalf("temporaries left: %v", left)
	}
}
