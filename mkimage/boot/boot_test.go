package boot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
)

// TestRegistry: every boot loader a recipe may name has exactly one
// layout.
func TestRegistry(t *testing.T) {
	if got, want := Names(), slices.Sorted(slices.Values(recipe.Bootloaders)); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want recipe.Bootloaders %q", got, want)
	}
	r := &recipe.Recipe{Bootloader: recipe.Bootloader{Type: "lilo"}}
	if _, err := Lookup(r); !errors.Is(err, recipe.ErrInvalid) {
		t.Errorf("Lookup(lilo) = %v, want ErrInvalid", err)
	}
}

// TestTargets validates every shipped recipe with its layout, as the
// builder does.
func TestTargets(t *testing.T) {
	files, err := filepath.Glob("../../targets/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("Glob(targets) = %v, %v", files, err)
	}
	for _, f := range files {
		r, err := recipe.Load(f)
		if err != nil {
			t.Errorf("Load(%s) = %v", f, err)
			continue
		}
		if r.InitMode != recipe.ModeEmbedded {
			continue
		}
		if _, err := Lookup(r); err != nil {
			t.Errorf("Lookup(%s) = %v", f, err)
		}
	}
}

const pc = `
arch = "amd64"
[kernel]
package = "linux-image-amd64"
[[disk.partitions]]
role = "bios-boot"
size_mib = 1
[[disk.partitions]]
role = "esp"
size_mib = 64
[[disk.partitions]]
role = "storage"
`

// board is a U-Boot board: arm64, MBR, FAT boot and ext4 storage.
const board = `
arch = "arm64"
[kernel]
package = "linux-image-arm64"
cmdline = "console=ttyAMA0,115200"
[bootloader]
type = "uboot"
[disk]
table = "mbr"
[[disk.partitions]]
role = "boot"
fs = "fat32"
size_mib = 64
[[disk.partitions]]
role = "storage"
`

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name, recipe, wantKey string
	}{
		{"grub on armhf", strings.Replace(pc, `"amd64"`, `"armhf"`, 1), "bootloader.type: grub is only supported"},
		{"no esp", strings.Replace(pc, `role = "esp"`, `role = "raw"`+"\nfs = \"none\"", 1), "needs an esp"},
		{"bad firmware", pc + "[bootloader]\nfirmware = [\"coreboot\"]\n", "bootloader.firmware[0]"},
		{"bios on arm64", strings.Replace(pc, `"amd64"`, `"arm64"`, 1), "bios boot does not exist on arm64"},
		{"bios without bios-boot", strings.Replace(pc, "role = \"bios-boot\"\nsize_mib = 1", "role = \"raw\"\nsize_mib = 1", 1), "needs a bios-boot partition"},
		// The builder used to accept these and crash assembling the image.
		{"bios on mbr", strings.Replace(strings.Replace(pc, "role = \"bios-boot\"\nsize_mib = 1", "role = \"raw\"\nsize_mib = 1", 1), "[kernel]", "[disk]\ntable = \"mbr\"\n[kernel]", 1), "grub for bios is only installed on gpt"},
		{"bios without esp", strings.Replace(pc, `role = "esp"`, `role = "raw"`+"\nfs = \"none\"", 1) + "[bootloader]\nfirmware = [\"bios\"]\n", "needs an esp"},
		{"uboot with firmware", strings.Replace(board, `type = "uboot"`, `type = "uboot"`+"\nfirmware = [\"uefi\"]", 1), "only grub takes firmware"},
		{"uboot without boot", strings.Replace(board, "role = \"boot\"\nfs = \"fat32\"", "role = \"raw\"\nfs = \"none\"", 1), "uboot needs a boot partition"},
		{"uboot on amd64", strings.Replace(board, `"arm64"`, `"amd64"`, 1), "uboot boots Linux on arm64, armel, armhf, mipsel, riscv64, not amd64"},
		{"uboot source half given", strings.Replace(board, `type = "uboot"`, `type = "uboot"`+"\nsource = \"u-boot\"\ndefconfig = \"maltael_defconfig\"", 1), "needs defconfig, fragments and binary"},
		{"uboot fragments without source", strings.Replace(board, `type = "uboot"`, `type = "uboot"`+"\nfragments = \"bootloader/uboot/malta\"", 1), "name it"},
		{"uboot fragments outside", strings.Replace(board, `type = "uboot"`, `type = "uboot"`+"\nsource = \"u-boot\"\ndefconfig = \"maltael_defconfig\"\nbinary = \"u-boot.bin\"\nfragments = \"../etc\"", 1), "not a path inside the repository"},
		{"uboot bad defconfig", strings.Replace(board, `type = "uboot"`, `type = "uboot"`+"\nsource = \"u-boot\"\ndefconfig = \"malta\"\nbinary = \"u-boot.bin\"\nfragments = \"b\"", 1), "bootloader.defconfig"},
		{"uboot storage not next", strings.Replace(board, "[[disk.partitions]]\nrole = \"storage\"", "[[disk.partitions]]\nrole = \"raw\"\nfs = \"none\"\nsize_mib = 1\n[[disk.partitions]]\nrole = \"storage\"", 1), "storage partition right after the boot partition"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := recipe.Parse([]byte(tt.recipe), "t")
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			_, err = Lookup(r)
			if !errors.Is(err, recipe.ErrInvalid) || !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Lookup() = %v, want ErrInvalid mentioning %q", err, tt.wantKey)
			}
		})
	}
	r, err := recipe.Parse([]byte(pc), "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(r); err != nil {
		t.Errorf("Lookup(pc) = %v", err)
	}
	r, err = recipe.Parse([]byte(board), "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(r); err != nil {
		t.Errorf("Lookup(board) = %v", err)
	}
}

// TestState: the factory boot state each layout writes is what
// runtime/bootloader reads as revision 0 (one format, two sides).
func TestState(t *testing.T) {
	for _, typ := range Names() {
		state, err := layouts[typ].State()
		if err != nil {
			t.Fatalf("%s: State() = %v", typ, err)
		}
		dir := t.TempDir()
		for name, data := range state {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var env bootloader.Env
		switch typ {
		case recipe.BootGrub:
			before := state["boot/grubenv"]
			if env, err = bootloader.OpenGrub(filepath.Join(dir, "boot/grubenv")); err != nil {
				t.Fatal(err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, "boot/grubenv")); string(after) != string(before) {
				t.Errorf("grub: runtime/bootloader rewrote the factory grubenv: %q", after)
			}
		case recipe.BootUboot, recipe.BootUbootAB:
			got := string(state["boot/uboot.txt"])
			// uboot: padded to the size Pantavisor rewrites in place
			if typ == recipe.BootUboot && len(got) == bootenv.UbootTxtSize {
				got = strings.TrimRight(got, "\x00") + "\x00\x00"
			}
			if got != "pv_rev=0\x00\x00" {
				t.Errorf("%s: uboot.txt = %q, want upstream's factory file", typ, got)
			}
			env = bootloader.OpenUbootFile(filepath.Join(dir, "boot/uboot.txt"))
		case recipe.BootRpiAB:
			if got := state["boot/rpiab.txt"]; len(got) != bootenv.RPiABSize || !strings.HasPrefix(string(got), "pv_rev=0\x00\x00") {
				t.Errorf("rpiab: rpiab.txt = %q, want pv_rev=0 in 512 bytes", got)
			}
			bl, err := bootloader.Open(bootloader.Options{Type: "rpiab", Storage: dir, RPi: &bootloader.RPiOptions{Parts: autobootOnly{}}})
			if err != nil {
				t.Fatal(err)
			}
			env = bl.Env()
		default:
			if len(state) != 0 {
				t.Errorf("%s: State() = %q, want none", typ, state)
			}
			continue
		}
		if rev, err := env.Get(bootloader.VarRev); err != nil || rev != "0" {
			t.Errorf("%s: runtime reads pv_rev = %q, %v; want 0", typ, rev, err)
		}
	}
	app := &recipe.Recipe{InitMode: recipe.ModeAppengine, Bootloader: recipe.Bootloader{Type: recipe.BootNone}}
	if s, err := State(app); err != nil || s["boot/grubenv"] == nil {
		t.Errorf("State(appengine) = %q, %v; want a grubenv", s, err)
	}
}

// autobootOnly is a bootsel partition holding the factory autoboot.txt.
type autobootOnly struct{ bootloader.Partitions }

func (autobootOnly) ReadFile(part int, name string) ([]byte, error) {
	if part != 1 || name != bootenv.AutobootFile {
		return nil, os.ErrNotExist
	}
	return bootenv.Autoboot(2, 3), nil
}

func TestPendingPlan(t *testing.T) {
	for _, typ := range []string{recipe.BootUbootAB} {
		if _, err := layouts[typ].Plan(Input{}); !errors.Is(err, ErrNotImplemented) {
			t.Errorf("%s: Plan() = %v, want ErrNotImplemented", typ, err)
		}
	}
}

// TestGrubPlan: the plan names the ESP by name, and its key follows the
// inputs that shape the boot files.
func TestGrubPlan(t *testing.T) {
	r, err := recipe.Parse([]byte(pc), "t")
	if err != nil {
		t.Fatal(err)
	}
	d, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := grubLayout{}.Plan(Input{Recipe: r, Disk: d, Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Tools, []string{"grub-mkimage"}) || len(p.Dirs) != 2 || p.Make == nil {
		t.Errorf("Plan() = tools %q dirs %q, want grub-mkimage and the two platforms", p.Tools, p.Dirs)
	}
	r.Kernel.Cmdline = "console=ttyS1"
	q, err := grubLayout{}.Plan(Input{Recipe: r, Disk: d, Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Key) == string(q.Key) {
		t.Error("Plan().Key did not change with kernel.cmdline")
	}
}
