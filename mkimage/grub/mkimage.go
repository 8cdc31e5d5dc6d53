package grub

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Platform is a GRUB target platform.
type Platform struct {
	// Format is grub-mkimage's -O value.
	Format string
	// Dir holds the platform's modules (from grub-efi-amd64-bin,
	// grub-pc-bin, ...).
	Dir string
	// Modules are built into the image so nothing is loaded at boot.
	Modules []string
}

var commonModules = []string{
	"part_gpt", "part_msdos", "fat", "ext2", "search", "search_label", "search_fs_uuid",
	"normal", "configfile", "linux", "loadenv", "test", "echo", "sleep", "reboot", "halt",
	"serial", "terminal", "minicmd", "ls", "cat",
}

// EFI is x86_64 UEFI (BOOTX64.EFI).
var EFI = Platform{Format: "x86_64-efi", Dir: "/usr/lib/grub/x86_64-efi", Modules: append([]string{"efi_gop", "efi_uga"}, commonModules...)}

// BIOS is i386-pc (core.img, booted by boot.img from the MBR).
var BIOS = Platform{Format: "i386-pc", Dir: "/usr/lib/grub/i386-pc", Modules: append([]string{"biosdisk"}, commonModules...)}

// EFIArm64 is arm64 UEFI (BOOTAA64.EFI).
var EFIArm64 = Platform{Format: "arm64-efi", Dir: "/usr/lib/grub/arm64-efi", Modules: commonModules}

// MkImage runs grub-mkimage with early embedded as its configuration and
// returns the image bytes.
func MkImage(ctx context.Context, p Platform, early []byte, prefix string) ([]byte, error) {
	if _, err := os.Stat(filepath.Join(p.Dir, "moddep.lst")); err != nil {
		return nil, fmt.Errorf("grub %s modules: %w (install the Debian grub bin package)", p.Format, err)
	}
	tmp, err := os.MkdirTemp("", "grub-mkimage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cfg := filepath.Join(tmp, "early.cfg")
	if err := os.WriteFile(cfg, early, 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "img")
	args := append([]string{"-O", p.Format, "-d", p.Dir, "-o", out, "-c", cfg, "-p", prefix}, p.Modules...)
	cmd := exec.CommandContext(ctx, "grub-mkimage", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("grub-mkimage -O %s: %w: %s", p.Format, err, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}
