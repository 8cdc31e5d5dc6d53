package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	write, ok := initrd.Writers[compression]
	if !ok {
		return false, fmt.Errorf("unknown initrd compression %q", compression)
	}
	kind := compression
	if x := (initrd.XZCLI{Arch: b.r.Arch}); compression == "xz" && x.Available() {
		kind = "xzcli-" + strings.Join(x.Args(), "")
		write = func(w io.Writer, t *initrd.Tree) error { return x.Write(context.Background(), w, t) }
	}
	sum := sha256.Sum256([]byte(kind))
	c := filepath.Join(b.o.Cache, "artifacts", "cpio-"+compression+"-"+hex.EncodeToString(sum[:4])+"-"+digest)
	if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
		return false, err
	}
	if _, err := os.Stat(c); err == nil {
		return true, copyFile(c, out)
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
