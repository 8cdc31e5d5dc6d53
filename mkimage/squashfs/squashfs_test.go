package squashfs

import (
	"bytes"
	"context"
	"fmt"
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

// TestMakeZstd: zstd defaults to level 19 in 1 MiB blocks (the
// containers' images); given values win (the BSP volumes' level 12).
func TestMakeZstd(t *testing.T) {
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs/unsquashfs (Debian squashfs-tools)")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), bytes.Repeat([]byte("pv"), 3000), 0o644)
	for _, tt := range []struct {
		o          Options
		block, lvl string
	}{
		{Options{Comp: "zstd"}, "Block size 1048576", "compression-level 19"},
		{Options{Comp: "zstd", Level: 12, BlockSize: 256 << 10}, "Block size 262144", "compression-level 12"},
	} {
		out := filepath.Join(t.TempDir(), "z.squashfs")
		if err := Make(context.Background(), dir, out, tt.o); err != nil {
			t.Fatal(err)
		}
		info, err := exec.Command("unsquashfs", "-s", out).CombinedOutput()
		if err != nil {
			t.Fatalf("unsquashfs -s: %v: %s", err, info)
		}
		for _, want := range []string{"Compression zstd", tt.block, tt.lvl} {
			if !bytes.Contains(info, []byte(want)) {
				t.Errorf("%+v: unsquashfs -s lacks %q:\n%s", tt.o, want, info)
			}
		}
	}
}

// TestMakeProcessors: the number of compressor threads does not change
// the image (the builder gives mksquashfs the CPUs it shares out).
func TestMakeProcessors(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs (Debian squashfs-tools)")
	}
	dir := t.TempDir()
	// several blocks and fragments, compressible unevenly
	seed := uint32(1)
	for i := range 12 {
		data := make([]byte, 300<<10+i*7919)
		for j := range data {
			seed = seed*1664525 + 1013904223
			data[j] = byte(seed>>24) & byte(0x0f<<(i%4))
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), data, 0o644)
	}
	var imgs [][]byte
	for _, n := range []int{0, 1, 3} {
		out := filepath.Join(t.TempDir(), "p.squashfs")
		if err := Make(context.Background(), dir, out, Options{Comp: "zstd", Epoch: 1700000000, BlockSize: 128 << 10, Level: 3, Processors: n}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, b)
	}
	if !bytes.Equal(imgs[0], imgs[1]) || !bytes.Equal(imgs[0], imgs[2]) {
		t.Errorf("images with 0, 1 and 3 processors differ")
	}
}
