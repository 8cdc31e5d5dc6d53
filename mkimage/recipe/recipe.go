// Package recipe reads the target recipes in targets/<target>.toml and the
// addon recipes in addons/<name>.toml into validated, typed values.
//
// Decoding is strict: an unknown key is an error naming that key. Defaults
// live in exactly one function (Defaults) and are applied before validation,
// so a recipe only has to say what differs from a plain GRUB/ext4 target.
//
//	r, err := recipe.Load("targets/x64-uefi.toml")
//	if err != nil { return err }
//	fmt.Println(r.Arch, r.Kernel.Package, r.Disk.Partitions)
//
// The schema is described for users in targets/README.md.
package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrInvalid is wrapped by every validation error, so callers can tell a bad
// recipe from an I/O failure with errors.Is.
var ErrInvalid = errors.New("invalid recipe")

// Init modes (the upstream system.init.mode words).
const (
	ModeEmbedded  = "embedded"
	ModeAppengine = "appengine"
)

// Bootloader types (the upstream PV_BOOTLOADER_TYPE words).
const (
	BootGrub    = "grub"
	BootUboot   = "uboot"
	BootUbootAB = "uboot-ab"
	BootRpiAB   = "rpiab"
	BootNone    = "none"
)

// Bootloaders are the boot loaders an embedded recipe may name; each has
// an entry in the layout registry (mkimage/boot).
var Bootloaders = []string{BootGrub, BootUboot, BootUbootAB, BootRpiAB}

// Partition roles.
const (
	RoleBIOSBoot = "bios-boot" // GPT BIOS boot partition holding GRUB core.img
	RoleESP      = "esp"       // EFI system partition (FAT)
	RoleBoot     = "boot"      // FAT boot partition (U-Boot, RPi)
	RoleStorage  = "storage"   // the Pantavisor storage (ext4, last)
	RoleRaw      = "raw"       // reserved raw space (OEM env, loaders)
)

// Recipe is one validated target recipe.
type Recipe struct {
	// Name is the target name; it defaults to the file name without ".toml".
	Name string `toml:"name"`
	// Arch is the Debian architecture: amd64, arm64, armhf, armel, i386,
	// mipsel, mips64el or riscv64.
	Arch string `toml:"arch"`
	// InitMode is "embedded" (Pantavisor is PID 1 of a bootable image) or
	// "appengine" (Pantavisor runs as a daemon on a host; no disk image).
	InitMode string `toml:"init_mode"`
	// ImageSizeMiB is the size of the flashable image; it is part of the
	// output name <target>-pv-<size>MiB.img.
	ImageSizeMiB int `toml:"image_size_mib"`

	Debian     Debian     `toml:"debian"`
	Kernel     Kernel     `toml:"kernel"`
	Initrd     Initrd     `toml:"initrd"`
	Modules    Modules    `toml:"modules"`
	Firmware   Firmware   `toml:"firmware"`
	Bootloader Bootloader `toml:"bootloader"`
	Disk       Disk       `toml:"disk"`
	Config     Config     `toml:"config"`
	Vendor     Vendor     `toml:"vendor"`
	// Addons names addons/<name>.toml recipes, built as <name>.cpio.xz4
	// (compressed as the initrd: .cpio.zst4 for zstd) and listed in
	// bsp/run.json "addons" in this order.
	Addons []string `toml:"addons"`
	// Containers are pvr exports merged into trails/0.
	Containers []Container `toml:"containers"`
	// ContainerCompression is the mksquashfs compressor of the
	// containers' root.squashfs (xz, gzip, lz4 or zstd; default xz).
	ContainerCompression string `toml:"container_compression"`
	// ContainerVerity makes the root.squashfs of the template and image
	// containers dm-verity volumes, as `pvr dm-convert` does: run.json's
	// "dm:root.squashfs", the hash device root.squashfs.hash and the
	// manifest _dm/root.squashfs.json with the root hash in the signed
	// state. The kernel verifies each block as it is read, so the boot
	// checksum leaves the data file out. A container's verity key wins.
	ContainerVerity bool `toml:"container_verity"`
}

// Debian says where Debian packages come from.
type Debian struct {
	Suite      string   `toml:"suite"`
	Mirror     string   `toml:"mirror"`
	Components []string `toml:"components"`
	// Keyring verifies the archive's Release files.
	Keyring string `toml:"keyring"`
}

// Kernel selects the Debian kernel package and its command line.
type Kernel struct {
	// Package is a Debian linux-image package. A metapackage
	// (linux-image-amd64) is followed to the versioned image it depends on.
	Package string `toml:"package"`
	// Version pins the Debian version of Package ("" = candidate).
	Version string `toml:"version"`
	// Cmdline is appended to the bootloader's Pantavisor arguments.
	Cmdline string `toml:"cmdline"`
}

// Initrd describes the base initrd (bsp/pantavisor).
type Initrd struct {
	// Modules are kernel module names carried in the initrd (with their
	// modules.dep dependencies); modules built into the kernel are skipped.
	Modules []string `toml:"modules"`
	// Packages are Debian packages unpacked into the target sysroot; Files
	// and the shared libraries they need are taken from there.
	Packages []string `toml:"packages"`
	// Files are sysroot paths copied into the initrd at the same path,
	// together with the shared libraries and dynamic loader they need.
	Files []string `toml:"files"`
	// Compression of the base initrd and the addons: a format of
	// mkimage/initrd (xz, zstd, gzip, none).
	Compression string `toml:"compression"`
	// Programs are the runtime programs (runtime/cmd/<name>) installed
	// as /usr/bin/<name> (default: pantavisor pvcontrol pvtx). The
	// applets of a listed program are links to it.
	Programs []string `toml:"programs"`
}

// Programs are the runtime programs an initrd may carry.
var Programs = []string{"pantavisor", "pvcontrol", "pvtx", "pventer"}

// Applets are the programs built into another one (a multi-call binary
// that dispatches on its argv[0]): applet → program. The initrd links
// /usr/bin/<applet> to the program; the kernel's module requests run
// /usr/bin/modprobe (the embedded init points /proc/sys/kernel/modprobe
// at it).
var Applets = map[string]string{"pventer": "pantavisor", "modprobe": "pantavisor", "vcmailbox": "pantavisor"}

// Modules selects what goes into bsp/modules.squashfs.
type Modules struct {
	// Include lists path prefixes below /lib/modules/<kver>/ (for example
	// "kernel/drivers/net") or globs of their first components
	// ("kernel/drivers/gpu/drm/*.ko"); empty means every module.
	Include []string `toml:"include"`
	// Exclude lists prefixes or globs removed after Include, with the
	// modules that depend on them. What is left comes with the modules it
	// depends on, wherever they are.
	Exclude []string `toml:"exclude"`
	// Compression for mksquashfs: xz, gzip, lz4 or zstd.
	Compression string `toml:"compression"`
	// Extra are out-of-tree modules built against the kernel package's
	// Debian headers and added to modules.squashfs (extra/<name>.ko).
	Extra []ExtraModule `toml:"extra"`
}

// ExtraModule is one out-of-tree kernel module source.
type ExtraModule struct {
	// Src is a repository directory with a Kbuild file (obj-m) and the
	// module's sources, for example "kernel-modules/pv-vcio".
	Src string `toml:"src"`
}

// Firmware selects what goes into bsp/firmware.squashfs.
type Firmware struct {
	// Packages are Debian firmware packages; their /lib/firmware is used.
	Packages []string `toml:"packages"`
	// Include lists path prefixes or globs (as Modules.Include) below
	// /lib/firmware; empty means all.
	Include []string `toml:"include"`
}

// Bootloader selects the boot chain.
type Bootloader struct {
	// Type is grub, uboot, uboot-ab, rpiab or none.
	Type string `toml:"type"`
	// Firmware lists the PC firmware GRUB is installed for: uefi, bios.
	Firmware []string `toml:"firmware"`
	// Timeout is the GRUB menu timeout in seconds.
	Timeout int `toml:"timeout"`
	// Source builds the boot loader from a Debian source package (its
	// name, "u-boot") instead of taking the machine's firmware as it is:
	// Defconfig is the board's configuration, Fragments a directory
	// (relative to the repository) of Kconfig fragments (*.config,
	// merged in name order) and patches (*.patch, applied with -p1 in
	// name order), Binary the build output that is the firmware
	// (u-boot.bin). mkimage/ubootbuild builds and caches it.
	Source    string `toml:"source"`
	Defconfig string `toml:"defconfig"`
	Fragments string `toml:"fragments"`
	Binary    string `toml:"binary"`
	// FlashMiB pads Binary into a flash image of that size, written
	// beside the disk image as <target>.pflash.img (QEMU -drive
	// if=pflash); 0 writes the firmware as <target>.<Binary>.
	FlashMiB int `toml:"flash_mib"`
}

// Disk is the partition table of the image.
type Disk struct {
	// Table is "gpt" or "mbr".
	Table string `toml:"table"`
	// AlignKiB aligns partition starts (1024 on x86/VMs, 4096 on SD/eMMC).
	AlignKiB int `toml:"align_kib"`
	// Partitions in disk order; the storage partition must be the last.
	Partitions []Partition `toml:"partitions"`
}

// Partition is one entry of the partition table.
type Partition struct {
	Name string `toml:"name"`
	// Role is bios-boot, esp, boot, storage or raw.
	Role string `toml:"role"`
	// Label is the file system label (storage default "root").
	Label string `toml:"label"`
	// FS is fat16, fat32, ext4 or none.
	FS string `toml:"fs"`
	// SizeMiB is the size; 0 on the storage partition means "the rest".
	SizeMiB int `toml:"size_mib"`
}

// Config names the configuration files baked into the image, relative to
// the repository root.
type Config struct {
	// Pantavisor is copied to /etc/pantavisor.config in the initrd.
	Pantavisor string `toml:"pantavisor"`
	// Pantahub is copied to config/pantahub.config on the storage.
	Pantahub string `toml:"pantahub"`
}

// Vendor names the vendor skeleton directories (relative to the repo).
type Vendor struct {
	// Skel is copied into the initrd root file system.
	Skel string `toml:"skel"`
	// StepSkel is copied into the factory revision trails/0.
	StepSkel string `toml:"stepskel"`
}

// Container is a platform of the factory revision: merged from a pvr
// source or built from a template.
type Container struct {
	Name string `toml:"name"`
	// Source is a pvr export tarball or a pvr checkout (its directory or
	// its .pvr), relative to the repository; all its non-bsp keys merge.
	Source string `toml:"source"`
	// Template builds a default container from busybox-static: "mgmt"
	// (busybox + pvcontrol, roles ["mgmt"]) or "network" (DHCP on the
	// first NIC).
	Template string `toml:"template"`
	// Image makes the container from a container image, as `pvr app add`
	// does: oci:<dir>[:tag], docker-archive:<file>[:repo:tag] (paths
	// absolute or relative to the repository) or docker://<ref>; the
	// image is resolved for the recipe's architecture.
	Image string `toml:"image"`
	// Args are the template args of an image container (src.json
	// "args": PV_GROUP, PV_ROLES, PV_DRIVERS_REQUIRED, PV_LXC_EXTRA_CONF …).
	Args map[string]any `toml:"args"`
	// Wifi gives a network template Debian's wpa_supplicant (and the
	// libraries it links): boards with Wi-Fi join the network of the
	// pvnet_* settings (kernel command line or user metadata).
	Wifi bool `toml:"wifi"`
	// Verity overrides container_verity for this template or image
	// container (a source is merged as its maker made and signed it:
	// pvr dm-convert converts it there).
	Verity *bool `toml:"verity"`
}

// Verity tells whether container c's root.squashfs is made a dm-verity
// volume.
func (r *Recipe) Verity(c Container) bool {
	if c.Source != "" {
		return false
	}
	if c.Verity != nil {
		return *c.Verity
	}
	return r.ContainerVerity
}

// VerityModule is the kernel module dm-verity volumes need (it pulls in
// dm_mod, dm_bufio and, with FEC, reed_solomon).
const VerityModule = "dm_verity"

// InitrdModules are the initrd's modules: initrd.modules, and
// VerityModule when a container is a dm-verity volume, which the runtime
// mounts before the BSP's modules.squashfs is there (it is mounted once
// its checksum passed, beside the container start).
func (r *Recipe) InitrdModules() []string {
	mods := r.Initrd.Modules
	if slices.Contains(mods, VerityModule) {
		return mods
	}
	for _, c := range r.Containers {
		if r.Verity(c) {
			return append(slices.Clone(mods), VerityModule)
		}
	}
	return mods
}

// Load reads and validates one target recipe file. Name defaults to the
// file name without its extension.
func Load(path string) (*Recipe, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	r, err := Parse(data, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Parse decodes a recipe strictly, applies Defaults and validates it.
// defaultName is used when the recipe has no name key.
func Parse(data []byte, defaultName string) (*Recipe, error) {
	var r Recipe
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	if r.Name == "" {
		r.Name = defaultName
	}
	Defaults(&r)
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeStrict decodes TOML and rejects keys that no field reads.
func decodeStrict(data []byte, v any) error {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%w: unknown key %s", ErrInvalid, strings.Join(keys, ", "))
	}
	return nil
}

// StoragePartition returns the storage partition, or nil (appengine).
func (r *Recipe) StoragePartition() *Partition {
	for i := range r.Disk.Partitions {
		if r.Disk.Partitions[i].Role == RoleStorage {
			return &r.Disk.Partitions[i]
		}
	}
	return nil
}

// Partition returns the first partition with the given role, or nil.
func (r *Recipe) Partition(role string) *Partition {
	for i := range r.Disk.Partitions {
		if r.Disk.Partitions[i].Role == role {
			return &r.Disk.Partitions[i]
		}
	}
	return nil
}

// HasFirmware reports whether GRUB is installed for the PC firmware fw.
func (b Bootloader) HasFirmware(fw string) bool {
	for _, f := range b.Firmware {
		if f == fw {
			return true
		}
	}
	return false
}
