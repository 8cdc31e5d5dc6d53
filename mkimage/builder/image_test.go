package builder

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/grub"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// imageRun is a build of the image stage alone: the x64-uefi recipe at
// 96 MiB, the repository's GRUB template, a small staged storage tree.
type imageRun struct {
	t       *testing.T
	b       *run
	storage string
}

func newImageRun(t *testing.T) *imageRun {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs", "grub-mkimage"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not installed (Debian e2fsprogs, grub-common)", tool)
		}
	}
	for _, p := range []grub.Platform{grub.EFI, grub.BIOS} {
		if _, err := os.Stat(filepath.Join(p.Dir, "moddep.lst")); err != nil {
			testenv.Skipf(t, "grub %s modules not installed (Debian grub-efi-amd64-bin, grub-pc-bin)", p.Format)
		}
	}
	r, err := recipe.Load("../../targets/x64-uefi.toml")
	if err != nil {
		t.Fatal(err)
	}
	r.ImageSizeMiB = 96
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	storage := t.TempDir()
	for name, data := range map[string]string{
		"objects/0123":           "kernel",
		"trails/0/.pvr/json":     `{"#spec":"pantavisor-service-system@1"}`,
		"boot/grubenv":           "# GRUB Environment Block\npv_rev=0\n",
		"config/pantahub.config": "creds.host=example\n",
	} {
		p := filepath.Join(storage, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(storage, "trails/0/bsp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(storage, "objects/0123"), filepath.Join(storage, "trails/0/bsp/kernel.img")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // go-diskfs FAT dates
	out := t.TempDir()
	b := &run{o: Options{Repo: repo, Out: out, Epoch: 1700000000}, r: r, work: filepath.Join(out, "work"),
		res: &Result{Sizes: map[string]int64{}, Storage: storage}}
	return &imageRun{t: t, b: b, storage: storage}
}

// build runs the image stage and tells whether it wrote the image.
func (ir *imageRun) build() (wrote bool) {
	ir.t.Helper()
	img := filepath.Join(ir.b.o.Out, ImageName(ir.b.r))
	before, _ := statFile(img)
	note, err := ir.b.makeImage(context.Background())
	if err != nil {
		ir.t.Fatalf("makeImage() = %v", err)
	}
	after, err := statFile(img)
	if err != nil {
		ir.t.Fatalf("image after makeImage(): %v", err)
	}
	unchanged := strings.Contains(note, "unchanged")
	if unchanged != (before == after) {
		ir.t.Fatalf("makeImage() note %q, but image identity %v → %v", note, before, after)
	}
	return !unchanged
}

func (ir *imageRun) image() []byte {
	ir.t.Helper()
	data, err := os.ReadFile(filepath.Join(ir.b.o.Out, ImageName(ir.b.r)))
	if err != nil {
		ir.t.Fatal(err)
	}
	return data
}

// TestImageIncremental: the image is written again exactly when one of
// its inputs changed or the image file is not the one last written.
func TestImageIncremental(t *testing.T) {
	ir := newImageRun(t)
	if !ir.build() {
		t.Fatal("first build did not write the image")
	}
	first := ir.image()
	img := filepath.Join(ir.b.o.Out, ImageName(ir.b.r))
	for _, tt := range []struct {
		name   string
		change func(t *testing.T)
		// wrote: the image is written again; same: with the first build's bytes
		wrote, same bool
	}{
		{"no change", func(t *testing.T) {}, false, true},
		{"storage file modified", func(t *testing.T) {
			writeFile(t, filepath.Join(ir.storage, "config/pantahub.config"), "creds.host=other\n")
		}, true, false},
		{"storage file restored", func(t *testing.T) {
			writeFile(t, filepath.Join(ir.storage, "config/pantahub.config"), "creds.host=example\n")
		}, true, true},
		{"storage file only touched", func(t *testing.T) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(ir.storage, "boot/grubenv"), later, later); err != nil {
				t.Fatal(err)
			}
		}, false, true},
		{"storage file mode", func(t *testing.T) {
			if err := os.Chmod(filepath.Join(ir.storage, "boot/grubenv"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true, false},
		{"storage file mode restored", func(t *testing.T) {
			if err := os.Chmod(filepath.Join(ir.storage, "boot/grubenv"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"storage hard link becomes a copy", func(t *testing.T) {
			k := filepath.Join(ir.storage, "trails/0/bsp/kernel.img")
			os.Remove(k)
			writeFile(t, k, "kernel")
		}, true, false},
		{"storage file added", func(t *testing.T) {
			writeFile(t, filepath.Join(ir.storage, "logs/x"), "")
		}, true, false},
		{"ESP grub.cfg (kernel command line)", func(t *testing.T) {
			ir.b.r.Kernel.Cmdline += " quiet"
		}, true, false},
		{"ESP grub.cfg restored", func(t *testing.T) {
			ir.b.r.Kernel.Cmdline = strings.TrimSuffix(ir.b.r.Kernel.Cmdline, " quiet")
			os.Remove(filepath.Join(ir.storage, "logs/x"))
			os.Remove(filepath.Join(ir.storage, "logs"))
			k := filepath.Join(ir.storage, "trails/0/bsp/kernel.img")
			os.Remove(k)
			if err := os.Link(filepath.Join(ir.storage, "objects/0123"), k); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"ESP without BIOS GRUB", func(t *testing.T) {
			ir.b.r.Bootloader.Firmware = []string{"uefi"}
		}, true, false},
		{"ESP with BIOS GRUB again", func(t *testing.T) {
			ir.b.r.Bootloader.Firmware = []string{"uefi", "bios"}
		}, true, true},
		{"epoch", func(t *testing.T) { ir.b.o.Epoch++ }, true, false},
		{"epoch restored", func(t *testing.T) { ir.b.o.Epoch-- }, true, true},
		{"image deleted", func(t *testing.T) {
			if err := os.Remove(img); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"image modified in place", func(t *testing.T) {
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			mtime := st.ModTime()
			if _, err := f.WriteAt([]byte("garbage"), 3<<20); err != nil {
				t.Fatal(err)
			}
			f.Close()
			// even with its modification time put back
			if err := os.Chtimes(img, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"image touched", func(t *testing.T) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(img, later, later); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"image replaced by a copy", func(t *testing.T) {
			data := ir.image()
			os.Remove(img)
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"stamp deleted", func(t *testing.T) {
			os.Remove(filepath.Join(ir.b.o.Out, "."+ImageName(ir.b.r)+".stamp"))
		}, true, true},
		{"no change again", func(t *testing.T) {}, false, true},
	} {
		tt.change(t)
		if got := ir.build(); got != tt.wrote {
			t.Errorf("%s: image written = %v, want %v", tt.name, got, tt.wrote)
		}
		if got := bytes.Equal(ir.image(), first); got != tt.same {
			t.Errorf("%s: image same as the first build = %v, want %v", tt.name, got, tt.same)
		}
	}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
