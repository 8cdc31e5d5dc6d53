package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/pantavisor/pantavisor-go/mkimage/grub"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/ubootscr"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// ubootLayout is U-Boot with distro boot: the FAT boot partition holds
// boot.scr (bootloader/uboot/boot.cmd.tmpl as a legacy script image) and
// pv.env (the pv_trying latch the script saves); the storage partition,
// the next one, holds boot/uboot.txt (pv_rev, pv_try) and the trails the
// script loads the kernel, initrd and fdt from. The U-Boot binary itself
// is the machine's firmware (QEMU -bios, a board's flash), not part of
// the image.
type ubootLayout struct{}

// ubootBoot is U-Boot's command for a Linux kernel per Debian
// architecture, and whether the kernel image Debian ships is compressed
// (booti inflates it through kernel_comp_addr_r; bootz's zImage inflates
// itself).
//
// On MIPS U-Boot boots a legacy uImage with bootm (the trail's
// pv-kernel.img is Debian's ELF kernel made into one: mkimage/ubootbuild)
// and no device tree: Debian's malta kernel takes its command line,
// initrd (rd_start/rd_size) and memory size the YAMON way bootm passes
// them without one.
var ubootBoot = map[string]struct {
	cmd        string
	decompress bool
	noFDT      bool
}{
	"arm64":   {cmd: "booti", decompress: true},
	"riscv64": {cmd: "booti", decompress: true},
	"armhf":   {cmd: "bootz"},
	"armel":   {cmd: "bootz"},
	"mipsel":  {cmd: "bootm", noFDT: true},
}

// LegacyKernel reports whether the recipe's kernel goes into its trail as
// a legacy uImage (U-Boot's bootm on MIPS) rather than as Debian ships it.
func LegacyKernel(r *recipe.Recipe) bool {
	return r.Bootloader.Type == recipe.BootUboot && ubootBoot[r.Arch].cmd == "bootm"
}

// ubootScriptName is the legacy image name of boot.scr.
const ubootScriptName = "pantavisor boot script"

func (ubootLayout) Validate(r *recipe.Recipe) error {
	if len(r.Bootloader.Firmware) > 0 {
		return invalid("bootloader.firmware", "only grub takes firmware")
	}
	if err := validateSource(r.Bootloader); err != nil {
		return err
	}
	if _, ok := ubootBoot[r.Arch]; !ok {
		return invalid("bootloader.type", "uboot boots Linux on %s, not %s", strings.Join(slices.Sorted(maps.Keys(ubootBoot)), ", "), r.Arch)
	}
	bootIdx, stIdx := -1, -1
	for i, p := range r.Disk.Partitions {
		switch p.Role {
		case recipe.RoleBoot:
			// FAT, as the recipe checks for the role.
			if bootIdx < 0 {
				bootIdx = i
			}
		case recipe.RoleStorage:
			stIdx = i
		}
	}
	if bootIdx < 0 {
		return invalid("disk.partitions", "uboot needs a boot partition")
	}
	// boot.scr finds the storage as the partition after its own, as
	// upstream's script does.
	if stIdx != bootIdx+1 {
		return invalid("disk.partitions", "uboot needs the storage partition right after the boot partition")
	}
	return nil
}

// State is upstream's factory boot/uboot.txt, "pv_rev=0\0\0", padded
// with NULs to the 64 KiB Pantavisor writes: its rewrites then stay in
// place (same inode and size), which U-Boot's ext4 reader sees without
// replaying the journal.
func (ubootLayout) State() (map[string][]byte, error) {
	env, err := bootenv.EncodeNul(bootenv.Vars{{Key: "pv_rev", Value: "0"}}, bootenv.UbootTxtSize, 0)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"boot/uboot.txt": env}, nil
}

// UbootScriptData fills bootloader/uboot/boot.cmd.tmpl.
type UbootScriptData struct {
	// DevType is the U-Boot block device type when distro boot did not
	// set one (a script sourced by hand).
	DevType string
	// BaseArgs make the kernel run Pantavisor from the initrd; Cmdline
	// is the recipe's kernel.cmdline.
	BaseArgs, Cmdline string
	// Boot is booti or bootz; Decompress sets kernel_comp_addr_r and
	// kernel_comp_size for a compressed kernel.
	Boot       string
	Decompress bool
	// Addons are the initrd addon indexes tried in order.
	Addons string
	// NoFDT boots without a device tree (bootm's legacy MIPS handover).
	NoFDT bool
}

// UbootScript renders the boot script text.
func UbootScript(tmpl string, d UbootScriptData) ([]byte, error) {
	// The arguments end up inside a double-quoted setenv.
	if strings.ContainsAny(d.Cmdline+d.BaseArgs, "\"'$;\n\\{}") {
		return nil, fmt.Errorf("boot.scr: kernel arguments may not contain quotes, $, ;, backslashes or braces")
	}
	t, err := template.New("boot.cmd").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("boot.cmd template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("boot.cmd template: %w", err)
	}
	return b.Bytes(), nil
}

// ubootScriptData is the script of a validated recipe.
func ubootScriptData(r *recipe.Recipe) UbootScriptData {
	addons := make([]string, grub.MaxAddons)
	for i := range addons {
		addons[i] = strconv.Itoa(i)
	}
	b := ubootBoot[r.Arch]
	return UbootScriptData{DevType: "mmc", BaseArgs: grub.DefaultBaseArgs, Cmdline: r.Kernel.Cmdline,
		Boot: b.cmd, Decompress: b.decompress, Addons: strings.Join(addons, " "), NoFDT: b.noFDT}
}

func (ubootLayout) Plan(in Input) (*Plan, error) {
	r := in.Recipe
	bp := in.Disk.Part(recipe.RoleBoot)
	if bp == nil {
		return nil, fmt.Errorf("uboot: the disk has no boot partition")
	}
	tmpl, err := os.ReadFile(filepath.Join(in.Repo, "bootloader/uboot/boot.cmd.tmpl"))
	if err != nil {
		return nil, err
	}
	script, err := UbootScript(string(tmpl), ubootScriptData(r))
	if err != nil {
		return nil, err
	}
	a, err := ubootscr.ArchOf(r.Arch)
	if err != nil {
		return nil, err
	}
	// The header's time is fixed, not the epoch: boot.scr is a function
	// of the script alone (U-Boot only prints the time).
	scr, err := ubootscr.Make(ubootScriptName, script, a, 0)
	if err != nil {
		return nil, err
	}
	// pv.env starts as an empty env: no try was attempted.
	env, err := bootenv.EncodeNul(nil, 0, 0)
	if err != nil {
		return nil, err
	}
	p := &Plan{Key: fmt.Appendf(nil, "uboot v1\nboot.scr %x\npv.env %x\nboot %q\n", sha256.Sum256(scr), sha256.Sum256(env), bp.Name)}
	p.Make = func(context.Context) (*Files, error) {
		return &Files{Partitions: map[string]map[string][]byte{bp.Name: {"/boot.scr": scr, "/pv.env": env}}}, nil
	}
	return p, nil
}

// validateSource checks the keys of a U-Boot built from source
// (mkimage/ubootbuild): all or none.
func validateSource(b recipe.Bootloader) error {
	if b.Source == "" {
		if b.Defconfig != "" || b.Fragments != "" || b.Binary != "" || b.FlashMiB != 0 {
			return invalid("bootloader.source", "defconfig, fragments, binary and flash_mib build U-Boot from a source package: name it")
		}
		return nil
	}
	if b.Defconfig == "" || b.Fragments == "" || b.Binary == "" {
		return invalid("bootloader.source", "building %s needs defconfig, fragments and binary", b.Source)
	}
	if !strings.HasSuffix(b.Defconfig, "_defconfig") || strings.ContainsAny(b.Defconfig+b.Binary, "/\\ ") {
		return invalid("bootloader.defconfig", "%q and binary %q: a <board>_defconfig and a file name", b.Defconfig, b.Binary)
	}
	if filepath.IsAbs(b.Fragments) || strings.HasPrefix(filepath.Clean(b.Fragments), "..") {
		return invalid("bootloader.fragments", "%q is not a path inside the repository", b.Fragments)
	}
	if b.FlashMiB < 0 || b.FlashMiB > 256 {
		return invalid("bootloader.flash_mib", "%d is not a flash size in MiB", b.FlashMiB)
	}
	return nil
}
