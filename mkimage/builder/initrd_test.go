package builder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
)

// A checkout made under umask 002 (or by root from a tarball) has group
// write bits git never recorded: the skeleton's modes must not follow.
func TestAddSkelModes(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"etc/conf": 0o664, "bin/tool": 0o775, "etc/key": 0o600} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o775); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
	tr := initrd.NewTree()
	if err := addSkel(tr, dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]uint32{"/etc/conf": 0o644, "/bin/tool": 0o755, "/etc/key": 0o644, "/etc": 0o755} {
		e, ok := tr.Get(p)
		if !ok {
			t.Fatalf("%s missing", p)
		}
		if e.Mode != want {
			t.Errorf("%s: mode %o, want %o", p, e.Mode, want)
		}
	}
}
