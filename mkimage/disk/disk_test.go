package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func loadRecipe(t *testing.T, size int) *recipe.Recipe {
	t.Helper()
	r, err := recipe.Load("../../targets/x64-uefi.toml")
	if err != nil {
		t.Fatal(err)
	}
	r.ImageSizeMiB = size
	return r
}

func TestPlan(t *testing.T) {
	l, err := Plan(loadRecipe(t, 1024))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		role        string
		start, size int64
	}{
		{"bios-boot", 1 * MiB, 1 * MiB},
		{"esp", 2 * MiB, 64 * MiB},
		{"storage", 66 * MiB, 1024*MiB - 66*MiB - MiB},
	}
	for i, w := range want {
		p := l.Parts[i]
		if p.Role != w.role || p.Start != w.start || p.Size != w.size || p.Index != i+1 {
			t.Errorf("Plan() part %d = %s %d+%d, want %s %d+%d", i, p.Role, p.Start, p.Size, w.role, w.start, w.size)
		}
	}
	r := loadRecipe(t, 1024)
	r.Disk.Partitions[2].SizeMiB = 2000
	if _, err := Plan(r); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Plan(oversized) = %v, want ErrTooSmall", err)
	}
}

func TestGUID(t *testing.T) {
	a, b := GUID("x64-uefi", "disk"), GUID("x64-uefi", "disk")
	if a != b || a == GUID("x64-uefi", "part-esp") || len(a) != 36 || a[14] != '4' {
		t.Errorf("GUID() = %s / %s, want stable v4-shaped and distinct per purpose", a, b)
	}
}

// TestImage builds a small image twice (GPT, FAT ESP, ext4 storage with a
// hard link) and checks it reads back and is byte-for-byte reproducible:
// once with the ext4 made beside and copied in (CopyInto), once made in
// place (Ext4Options.Offset), which must give the same bytes.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		testenv.Skipf(t, "no mkfs.ext4 (Debian e2fsprogs)")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	stage := t.TempDir()
	os.MkdirAll(filepath.Join(stage, "objects"), 0o755)
	os.MkdirAll(filepath.Join(stage, "trails/0/bsp"), 0o755)
	os.WriteFile(filepath.Join(stage, "objects/abc"), []byte("kernel"), 0o644)
	if err := os.Link(filepath.Join(stage, "objects/abc"), filepath.Join(stage, "trails/0/bsp/kernel.img")); err != nil {
		t.Fatal(err)
	}
	build := func(inPlace bool) []byte {
		dir := t.TempDir()
		img := filepath.Join(dir, "img")
		l, err := Plan(loadRecipe(t, 100))
		if err != nil {
			t.Fatal(err)
		}
		if err := Create(img, l, "seed"); err != nil {
			t.Fatal(err)
		}
		if err := WriteFAT(img, l.Part("esp"), map[string][]byte{"/EFI/BOOT/BOOTX64.EFI": []byte("MZ"), "/EFI/BOOT/grub.cfg": []byte("x")}); err != nil {
			t.Fatal(err)
		}
		st := l.Part("storage")
		o := Ext4Options{Dir: stage, Label: "root", Size: st.Size, UUID: GUID("s", "u"), HashSeed: GUID("s", "h"), Epoch: 1700000000}
		fs := filepath.Join(dir, "storage.ext4")
		if inPlace {
			o.Offset = st.Start
			if err := MakeExt4(context.Background(), img, o); err != nil {
				t.Fatal(err)
			}
			fs = img + "?offset=" + strconv.FormatInt(st.Start, 10)
		} else {
			if err := MakeExt4(context.Background(), fs, o); err != nil {
				t.Fatal(err)
			}
			if err := CopyInto(img, st.Start, fs); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command("debugfs", "-R", "stat /trails/0/bsp/kernel.img", fs).Output(); err == nil {
			if !strings.Contains(string(out), "Links: 2") {
				t.Errorf("hard link lost in ext4: %s", out)
			}
			if !strings.Contains(string(out), "ctime: 0x6553f100:") {
				t.Errorf("ctime not clamped to the epoch: %s", out)
			}
		}
		d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pt, err := d.GetPartitionTable()
		if err != nil || len(pt.GetPartitions()) != 3 {
			t.Fatalf("partition table = %v, %v", pt, err)
		}
		data, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a := build(false)
	// ctime comes from the host and has a one-second resolution in the
	// image: rebuild in another second so a leak would show.
	time.Sleep(1100 * time.Millisecond)
	b := build(true)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds (copied, in place) differ: %x vs %x", sha256.Sum256(a), sha256.Sum256(b))
	}
}
