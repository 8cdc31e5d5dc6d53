package builder

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
)

// writeArchive writes t with the named compression to out, reusing a
// cached archive with the same tree digest: compression dominates the
// initrd stage and its inputs rarely change between builds.
func (b *run) writeArchive(t *initrd.Tree, compression, out string) (cached bool, err error) {
	digest, err := t.Digest()
	if err != nil {
		return false, err
	}
	c := filepath.Join(b.o.Cache, "artifacts", "cpio-"+compression+"-"+digest)
	if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
		return false, err
	}
	if _, err := os.Stat(c); err == nil {
		return true, copyFile(c, out)
	}
	write, ok := initrd.Writers[compression]
	if !ok {
		return false, fmt.Errorf("unknown initrd compression %q", compression)
	}
	f, err := os.Create(c + ".tmp")
	if err != nil {
		return false, err
	}
	if err := write(f, t); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(c+".tmp", c); err != nil {
		return false, err
	}
	return false, copyFile(c, out)
}
