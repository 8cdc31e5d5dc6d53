package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

func rpiRecipe(t *testing.T) *recipe.Recipe {
	t.Helper()
	r, err := recipe.Load("../../targets/rpi64ab.toml")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRpiValidate: the rpiab backend reaches the partitions by number,
// so the layout insists on bootsel, boot_a, boot_b, storage, on MBR.
func TestRpiValidate(t *testing.T) {
	for name, edit := range map[string]func(r *recipe.Recipe){
		"gpt":   func(r *recipe.Recipe) { r.Disk.Table = "gpt" },
		"amd64": func(r *recipe.Recipe) { r.Arch = "amd64" },
		"order": func(r *recipe.Recipe) {
			r.Disk.Partitions[1], r.Disk.Partitions[2] = r.Disk.Partitions[2], r.Disk.Partitions[1]
		},
		"sizes":      func(r *recipe.Recipe) { r.Disk.Partitions[2].SizeMiB++ },
		"no storage": func(r *recipe.Recipe) { r.Disk.Partitions = r.Disk.Partitions[:3] },
	} {
		r := rpiRecipe(t)
		if err := (rpiabLayout{}).Validate(r); err != nil {
			t.Fatalf("Validate(rpi64ab) = %v", err)
		}
		edit(r)
		if err := (rpiabLayout{}).Validate(r); !errors.Is(err, recipe.ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid", name, err)
		}
	}
}

// TestRpiBoot: the boot image holds the firmware, the device trees, the
// kernel under the name config.txt gives, the initramfs list and
// cmdline.txt; the plan writes it to boot_a and boot_b and fills bootsel.
func TestRpiBoot(t *testing.T) {
	r := rpiRecipe(t)
	dir := t.TempDir()
	w := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, f := range []string{"start4.elf", "fixup4.dat", "bootcode.bin"} {
		w("fw/"+f, f)
	}
	b := RpiBoot{Recipe: r, Kernel: w("vmlinuz", "K"), Initrd: w("pantavisor", "I"), Addons: []string{w("debug.cpio.xz4", "D")},
		DTBs: []string{w("bcm2711-rpi-4-b.dtb", "4"), w("bcm2711-rpi-cm4-io.dtb", "cm4")}, Firmware: filepath.Join(dir, "fw")}
	files, err := b.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"/kernel8.img": "K", "/pantavisor": "I", "/debug.cpio.xz4": "D",
		"/bcm2711-rpi-cm4.dtb": "cm4", "/start4.elf": "start4.elf"} {
		if string(files[name]) != want {
			t.Errorf("%s = %q, want %q", name, files[name], want)
		}
	}
	cfg := string(files["/config.txt"])
	for _, want := range []string{"arm_64bit=1\n", "kernel=kernel8.img\n", "initramfs pantavisor,debug.cpio.xz4 followkernel\n", "enable_uart=1\n", "dtparam=watchdog=on\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config.txt has no %q:\n%s", want, cfg)
		}
	}
	if cl := string(files["/cmdline.txt"]); !strings.HasPrefix(cl, "rdinit=/init PV_BOOTLOADER_TYPE=rpiab console=") {
		t.Errorf("cmdline.txt = %q", cl)
	}
	boot := filepath.Join(dir, "boot")
	os.MkdirAll(boot, 0o755)
	if err := b.Make(filepath.Join(boot, RpiBootImage)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(boot, RpiBootImage)); err != nil || fi.Size() != 128<<20 {
		t.Fatalf("boot image: %v, %v; want 128 MiB", fi, err)
	}
	w("boot/bootcode.bin", "bootcode")
	d, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := (rpiabLayout{}).Plan(Input{Recipe: r, Disk: d, Boot: boot})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Make(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Images["boot_a"] != filepath.Join(boot, RpiBootImage) || got.Images["boot_b"] != got.Images["boot_a"] {
		t.Errorf("Images = %q", got.Images)
	}
	sel := got.Partitions["bootsel"]
	if string(sel["/bootcode.bin"]) != "bootcode" || !strings.Contains(string(sel["/autoboot.txt"]), "tryboot_a_b=1") || sel["/config.txt"] == nil {
		t.Errorf("bootsel = %q", sel)
	}
	// the key follows the image
	w("boot/"+RpiBootImage, "other")
	q, err := (rpiabLayout{}).Plan(Input{Recipe: r, Disk: d, Boot: boot})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Key) == string(q.Key) {
		t.Error("Plan().Key did not change with the boot image")
	}
}
