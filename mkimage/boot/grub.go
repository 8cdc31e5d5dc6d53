package boot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pantavisor/pantavisor-go/mkimage/grub"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// grubLayout is GRUB for PC firmware: on the ESP (FAT, by role) the UEFI
// image and grub.cfg, for BIOS boot.img in the MBR and core.img in the
// BIOS boot partition (GPT); the revision state is boot/grubenv on the
// storage.
type grubLayout struct{}

// grubEFI are the UEFI GRUB platforms by Debian architecture and the
// removable-media file name the firmware boots. i386 boots the x86_64
// image, as the builder always did.
var grubEFI = map[string]struct {
	platform *grub.Platform
	name     string
}{
	"amd64": {&grub.EFI, "/EFI/BOOT/BOOTX64.EFI"},
	"i386":  {&grub.EFI, "/EFI/BOOT/BOOTX64.EFI"},
	"arm64": {&grub.EFIArm64, "/EFI/BOOT/BOOTAA64.EFI"},
}

// grubBIOS are the architectures a PC BIOS boots.
var grubBIOS = []string{"amd64", "i386"}

func (grubLayout) Validate(r *recipe.Recipe) error {
	b := r.Bootloader
	if _, ok := grubEFI[r.Arch]; !ok {
		return invalid("bootloader.type", "grub is only supported on amd64, i386 and arm64, not %s", r.Arch)
	}
	if len(b.Firmware) == 0 {
		return invalid("bootloader.firmware", "grub needs uefi and/or bios")
	}
	for i, f := range b.Firmware {
		if f != "uefi" && f != "bios" {
			return invalid(fmt.Sprintf("bootloader.firmware[%d]", i), "%q is not uefi or bios", f)
		}
		if f == "bios" && !slices.Contains(grubBIOS, r.Arch) {
			return invalid(fmt.Sprintf("bootloader.firmware[%d]", i), "bios boot does not exist on %s", r.Arch)
		}
	}
	// grub.cfg lives on the ESP for BIOS boots too.
	if r.Partition(recipe.RoleESP) == nil {
		return invalid("disk.partitions", "grub needs an esp partition (grub.cfg, and the UEFI image for uefi)")
	}
	if b.HasFirmware("bios") && r.Disk.Table == "gpt" && r.Partition(recipe.RoleBIOSBoot) == nil {
		return invalid("disk.partitions", "grub for bios on gpt needs a bios-boot partition")
	}
	if b.HasFirmware("bios") && r.Disk.Table != "gpt" {
		return invalid("bootloader.firmware", "grub for bios is only installed on gpt (core.img goes to the bios-boot partition)")
	}
	return nil
}

func (grubLayout) State() (map[string][]byte, error) {
	env, err := bootenv.EncodeGrub(bootenv.Vars{{Key: "pv_rev", Value: "0"}})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"boot/grubenv": env}, nil
}

func (grubLayout) Plan(in Input) (*Plan, error) {
	r := in.Recipe
	esp, st := in.Disk.Part(recipe.RoleESP), in.Disk.Part(recipe.RoleStorage)
	if esp == nil || st == nil {
		return nil, fmt.Errorf("grub: the disk has no esp or storage partition")
	}
	tmpl, err := os.ReadFile(filepath.Join(in.Repo, "bootloader/grub/grub.cfg.tmpl"))
	if err != nil {
		return nil, err
	}
	cfg, err := grub.Config(string(tmpl), grub.ConfigData{StorageLabel: st.Label, Timeout: r.Bootloader.Timeout, Cmdline: r.Kernel.Cmdline})
	if err != nil {
		return nil, err
	}
	early := grub.EarlyConfig(esp.Label)
	var efi *grub.Platform
	efiName := "/EFI/BOOT/BOOTX64.EFI"
	if r.Bootloader.HasFirmware("uefi") {
		efi, efiName = grubEFI[r.Arch].platform, grubEFI[r.Arch].name
	}
	var bios *grub.Platform
	var biosPart string
	if r.Bootloader.HasFirmware("bios") {
		bios = &grub.BIOS
		bb := in.Disk.Part(recipe.RoleBIOSBoot)
		if bb == nil {
			return nil, fmt.Errorf("grub: the disk has no bios-boot partition")
		}
		biosPart = bb.Name
	}
	p := &Plan{Tools: []string{"grub-mkimage"}}
	p.Key = fmt.Appendf(nil, "grub v1\ngrub.cfg %x\nearly %x\nesp %q\nbios-boot %q\nefi name %q\n", sha256.Sum256(cfg), sha256.Sum256(early), esp.Name, biosPart, efiName)
	for _, pl := range []*grub.Platform{efi, bios} {
		if pl != nil {
			p.Key = fmt.Appendf(p.Key, "platform %#v\n", *pl)
			p.Dirs = append(p.Dirs, pl.Dir)
		}
	}
	p.Make = func(ctx context.Context) (*Files, error) {
		files := map[string][]byte{"/EFI/BOOT/grub.cfg": cfg}
		if efi != nil {
			data, err := grub.MkImage(ctx, *efi, early, "/EFI/BOOT")
			if err != nil {
				return nil, err
			}
			files[efiName] = data
		}
		out := &Files{Partitions: map[string]map[string][]byte{esp.Name: files}}
		if bios != nil {
			core, err := grub.MkImage(ctx, *bios, early, "/EFI/BOOT")
			if err != nil {
				return nil, err
			}
			bootImg, err := os.ReadFile(filepath.Join(bios.Dir, "boot.img"))
			if err != nil {
				return nil, err
			}
			bb := in.Disk.PartByName(biosPart)
			if out.Raw, err = grub.BIOSRegions(bootImg, core, uint64(bb.Start/512), uint64(bb.Size/512)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return p, nil
}
