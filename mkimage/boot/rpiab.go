package boot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/grub"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// rpiabLayout is the Raspberry Pi tryboot A/B layout (upstream RPIAB,
// wic/rpi-tryboot-ab.wks): partition 1 "bootsel" holds autoboot.txt,
// which makes the firmware boot partition 2 (boot_a), or 3 (boot_b) when
// tryboot is armed; boot_a and boot_b hold the same FAT image, the one
// the BSP carries as bsp/pantavisor-rpi.img.gz and the runtime writes
// onto the try partition on an update. The storage is partition 4 with
// boot/rpiab.txt (pv_rev, pv_try). runtime/bootloader's rpiab backend
// reaches the partitions by number, so the numbers are fixed.
type rpiabLayout struct{}

// RpiBootImage is the name of the boot FAT image in Input.Boot, and
// gzipped in the BSP (run.json "rpiab").
const RpiBootImage = "pantavisor-rpi.img"

// rpiKernel is the kernel file name and config.txt lines per Debian
// architecture: arm64 runs the 64-bit kernel; armhf the LPAE kernel the
// Pi 4's firmware loads as kernel7l.img.
var rpiKernel = map[string]struct {
	file   string
	config string
}{
	"arm64": {"kernel8.img", "arm_64bit=1\n"},
	"armhf": {"kernel7l.img", "arm_64bit=0\n"},
}

// rpiParts are the partition names and file systems, in order.
var rpiParts = []struct{ name, fs string }{
	{"bootsel", "fat16"}, {"boot_a", "fat32"}, {"boot_b", "fat32"},
}

func (rpiabLayout) Validate(r *recipe.Recipe) error {
	if len(r.Bootloader.Firmware) > 0 {
		return invalid("bootloader.firmware", "only grub takes firmware")
	}
	if _, ok := rpiKernel[r.Arch]; !ok {
		return invalid("bootloader.type", "rpiab boots arm64 or armhf, not %s", r.Arch)
	}
	if r.Disk.Table != "mbr" {
		// CM5 autoboot + tryboot fails on GPT (rpi-eeprom#818).
		return invalid("disk.table", "rpiab needs mbr")
	}
	ps := r.Disk.Partitions
	if len(ps) != len(rpiParts)+1 {
		return invalid("disk.partitions", "rpiab needs bootsel, boot_a, boot_b and the storage, in that order")
	}
	for i, want := range rpiParts {
		if ps[i].Name != want.name || ps[i].Role != recipe.RoleBoot || ps[i].FS != want.fs {
			return invalid("disk.partitions", "rpiab partition %d must be %s (role boot, %s), not %s", i+1, want.name, want.fs, ps[i].Name)
		}
	}
	if ps[1].SizeMiB != ps[2].SizeMiB || ps[1].Label != ps[2].Label {
		return invalid("disk.partitions", "boot_a and boot_b must have the same size and label: they hold the same image")
	}
	if ps[3].Role != recipe.RoleStorage {
		return invalid("disk.partitions", "rpiab partition 4 must be the storage")
	}
	return nil
}

// State is the factory boot/rpiab.txt: pv_rev=0 in the 512-byte
// NUL-separated env the runtime's rpiab backend rewrites.
func (rpiabLayout) State() (map[string][]byte, error) {
	env, err := bootenv.EncodeNul(bootenv.Vars{{Key: "pv_rev", Value: "0"}}, bootenv.RPiABSize, 0)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"boot/rpiab.txt": env}, nil
}

// RpiBoot is what the boot FAT image (boot_a, boot_b, the BSP's
// pantavisor-rpi.img.gz) is made of.
type RpiBoot struct {
	Recipe *recipe.Recipe
	// Kernel, Initrd are host paths; the kernel becomes kernel8.img or
	// kernel7l.img, the initrd "pantavisor".
	Kernel, Initrd string
	// DTBs are the device trees (host paths), copied by base name.
	DTBs []string
	// Firmware is the directory of the GPU firmware (Debian's
	// /usr/lib/raspi-firmware: bootcode.bin, start*.elf, fixup*.dat).
	Firmware string
	// Addons are initrd addons (host paths), loaded after the initrd in
	// order (config.txt's initramfs list).
	Addons []string
	// Overlays is a directory of device tree overlays ("" = none:
	// Debian's kernel has no Pi overlays).
	Overlays string
}

// RpiConfig is config.txt of the boot partitions; initrds are the
// initramfs files the firmware loads behind the kernel, in order.
func RpiConfig(arch string, initrds []string) ([]byte, error) {
	k, ok := rpiKernel[arch]
	if !ok {
		return nil, fmt.Errorf("rpiab: no kernel for %s", arch)
	}
	return []byte("# Pantavisor rpiab boot partition (boot_a / boot_b)\n[all]\n" + k.config +
		"kernel=" + k.file + "\n" +
		"initramfs " + strings.Join(initrds, ",") + " followkernel\n" +
		"cmdline=cmdline.txt\n" +
		"enable_uart=1\n" +
		"dtparam=watchdog=on\n" +
		"disable_splash=1\n"), nil
}

// RpiCmdline is cmdline.txt: Pantavisor from the initramfs with the rpiab
// boot loader, then the recipe's kernel.cmdline.
func RpiCmdline(r *recipe.Recipe) []byte {
	return []byte(strings.Join(strings.Fields(grub.DefaultBaseArgs+" PV_BOOTLOADER_TYPE=rpiab "+r.Kernel.Cmdline), " ") + "\n")
}

// Files are the boot partition's files (absolute path → content).
func (b RpiBoot) Files() (map[string][]byte, error) {
	r := b.Recipe
	k, ok := rpiKernel[r.Arch]
	if !ok {
		return nil, fmt.Errorf("rpiab: no kernel for %s", r.Arch)
	}
	files := map[string][]byte{}
	add := func(name, src string) error {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("rpiab: %w", err)
		}
		files[name] = data
		return nil
	}
	fw, err := os.ReadDir(b.Firmware)
	if err != nil {
		return nil, fmt.Errorf("rpiab: firmware: %w", err)
	}
	n := 0
	for _, e := range fw {
		name := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(name, ".elf") || strings.HasSuffix(name, ".dat") || name == "bootcode.bin") {
			if err := add("/"+name, filepath.Join(b.Firmware, name)); err != nil {
				return nil, err
			}
			n++
		}
	}
	if files["/start4.elf"] == nil || files["/fixup4.dat"] == nil {
		return nil, fmt.Errorf("rpiab: %s has no start4.elf and fixup4.dat", b.Firmware)
	}
	if len(b.DTBs) == 0 {
		return nil, fmt.Errorf("rpiab: no device trees")
	}
	for _, d := range b.DTBs {
		if err := add("/"+filepath.Base(d), d); err != nil {
			return nil, err
		}
	}
	// The firmware loads the CM4's tree by its downstream name; the
	// mainline tree of the CM4 on its IO board serves.
	if cm4 := files["/bcm2711-rpi-cm4-io.dtb"]; cm4 != nil && files["/bcm2711-rpi-cm4.dtb"] == nil {
		files["/bcm2711-rpi-cm4.dtb"] = cm4
	}
	if b.Overlays != "" {
		ovs, err := os.ReadDir(b.Overlays)
		if err != nil {
			return nil, fmt.Errorf("rpiab: overlays: %w", err)
		}
		for _, e := range ovs {
			if e.Type().IsRegular() {
				if err := add("/overlays/"+e.Name(), filepath.Join(b.Overlays, e.Name())); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := add("/"+k.file, b.Kernel); err != nil {
		return nil, err
	}
	if err := add("/pantavisor", b.Initrd); err != nil {
		return nil, err
	}
	initrds := []string{"pantavisor"}
	for _, a := range b.Addons {
		name := filepath.Base(a)
		if err := add("/"+name, a); err != nil {
			return nil, err
		}
		initrds = append(initrds, name)
	}
	if files["/config.txt"], err = RpiConfig(r.Arch, initrds); err != nil {
		return nil, err
	}
	files["/cmdline.txt"] = RpiCmdline(r)
	return files, nil
}

// Make writes the boot FAT image to out: the size and label of the
// recipe's boot_a, formatted reproducibly.
func (b RpiBoot) Make(out string) error {
	var p *recipe.Partition
	for i := range b.Recipe.Disk.Partitions {
		if b.Recipe.Disk.Partitions[i].Name == "boot_a" {
			p = &b.Recipe.Disk.Partitions[i]
		}
	}
	if p == nil {
		return fmt.Errorf("rpiab: the recipe has no boot_a partition")
	}
	files, err := b.Files()
	if err != nil {
		return err
	}
	size := int64(p.SizeMiB) * disk.MiB
	total := int64(0)
	for _, d := range files {
		total += int64(len(d))
	}
	if total > size*9/10 {
		return fmt.Errorf("rpiab: the boot files (%d MiB) do not fit the %d MiB boot partitions", total>>20, p.SizeMiB)
	}
	os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Partition 0 is the whole file: a bare file system image, as
	// mkfs.vfat makes for upstream's rpi boot image.
	return disk.WriteFAT(out, &disk.Placed{Partition: *p, Index: 0, Size: size}, files)
}

// Plan: bootsel gets autoboot.txt, an empty config.txt and bootcode.bin;
// boot_a and boot_b are written from Input.Boot's pantavisor-rpi.img.
func (rpiabLayout) Plan(in Input) (*Plan, error) {
	for _, want := range rpiParts {
		if in.Disk.PartByName(want.name) == nil {
			return nil, fmt.Errorf("rpiab: the disk has no %s partition", want.name)
		}
	}
	if in.Boot == "" {
		return nil, fmt.Errorf("rpiab: no boot image (the bsp stage makes %s)", RpiBootImage)
	}
	img := filepath.Join(in.Boot, RpiBootImage)
	h := sha256.New()
	fmt.Fprintf(h, "rpiab v1\n")
	for _, name := range []string{RpiBootImage, "bootcode.bin"} {
		f, err := os.Open(filepath.Join(in.Boot, name))
		if err != nil {
			return nil, fmt.Errorf("rpiab: %w", err)
		}
		fmt.Fprintf(h, "%s ", name)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("rpiab: %w", err)
		}
	}
	p := &Plan{Key: h.Sum(nil)}
	p.Make = func(context.Context) (*Files, error) {
		bc, err := os.ReadFile(filepath.Join(in.Boot, "bootcode.bin"))
		if err != nil {
			return nil, fmt.Errorf("rpiab: %w", err)
		}
		return &Files{
			Partitions: map[string]map[string][]byte{"bootsel": {
				"/" + bootenv.AutobootFile: bootenv.Autoboot(2, 3),
				"/config.txt":              {},
				"/bootcode.bin":            bc,
			}},
			Images: map[string]string{"boot_a": img, "boot_b": img},
		}, nil
	}
	return p, nil
}

// RpiDTBs are the Raspberry Pi device trees of an unpacked Debian kernel
// package (root): arm64 ships them in broadcom/, armhf flat.
func RpiDTBs(root, kver string) ([]string, error) {
	dir := filepath.Join(root, "usr/lib/linux-image-"+kver)
	var out []string
	for _, pat := range []string{"broadcom/bcm27*-rpi-*.dtb", "broadcom/bcm283*-rpi-*.dtb", "bcm27*-rpi-*.dtb", "bcm283*-rpi-*.dtb"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("rpiab: no Raspberry Pi device trees in %s", dir)
	}
	return out, nil
}
