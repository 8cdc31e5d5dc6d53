package squashfs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func TestMakeReproducible(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs (Debian squashfs-tools)")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "kernel/fs"), 0o755)
	os.WriteFile(filepath.Join(dir, "kernel/fs/a.ko"), bytes.Repeat([]byte("x"), 5000), 0o644)
	os.Link(filepath.Join(dir, "kernel/fs/a.ko"), filepath.Join(dir, "b.ko"))
	var imgs [][]byte
	for i := 0; i < 2; i++ {
		out := filepath.Join(t.TempDir(), "m.squashfs")
		if err := Make(context.Background(), dir, out, Options{Comp: "xz", Epoch: 1700000000}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, b)
		// Touch the input: times must not leak into the image.
		os.Chtimes(filepath.Join(dir, "b.ko"), time.Now(), time.Now())
	}
	if !bytes.Equal(imgs[0], imgs[1]) {
		t.Errorf("two mksquashfs runs differ")
	}
	if !bytes.HasPrefix(imgs[0], []byte("hsqs")) {
		t.Errorf("image magic = %q, want hsqs", imgs[0][:4])
	}
	if err := Make(context.Background(), filepath.Join(dir, "missing"), filepath.Join(t.TempDir(), "x"), Options{}); err == nil {
		t.Errorf("Make(missing dir) = nil error")
	}
}
