// Package grub produces what a GRUB-booted Pantavisor image needs:
// grub.cfg implementing the pv_rev/pv_try contract (on the grubenv block
// of runtime/bootenv), the GRUB images (BOOTX64.EFI, i386-pc core.img) made with
// grub-mkimage from Debian's grub-*-bin, and the BIOS installation into
// the disk image (boot.img in the MBR, core.img in the BIOS boot
// partition, as raw regions), patched in Go instead of running
// grub-bios-setup on a device. The boot layout that uses it is
// mkimage/boot's grub entry.
//
//	cfg, err := grub.Config(tmpl, grub.ConfigData{StorageLabel: "root", ...})
//	efi, err := grub.MkImage(ctx, grub.EFI, early, "/EFI/BOOT")
//	regions, err := grub.BIOSRegions(bootImg, coreImg, coreLBA, sectors)
package grub

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// MaxAddons is how many initrd addons (pv-initrd.img.0..N-1) grub.cfg
// looks for.
const MaxAddons = 8

// ConfigData fills bootloader/grub/grub.cfg.tmpl.
type ConfigData struct {
	// StorageLabel is the ext4 label of the storage partition.
	StorageLabel string
	// Timeout of the menu in seconds.
	Timeout int
	// BaseArgs are the arguments that make the kernel run Pantavisor from
	// the initrd.
	BaseArgs string
	// Cmdline is the recipe's kernel.cmdline.
	Cmdline string
	// InitrdChain is generated: the initrd line with every present addon.
	InitrdChain string
}

// DefaultBaseArgs boot Pantavisor from the initramfs.
const DefaultBaseArgs = "rdinit=/init"

// initrdChain is a fixed if/elif ladder: GRUB scripts cannot build a list
// of files in a variable and pass it as separate arguments.
func initrdChain(n int) string {
	var b strings.Builder
	for i := n - 1; i >= 0; i-- {
		kw := "elif"
		if i == n-1 {
			kw = "if"
		}
		fmt.Fprintf(&b, "  %s [ -f $pvtrail/pv-initrd.img.%d ]; then\n    initrd $pvtrail/pv-initrd.img", kw, i)
		for j := 0; j <= i; j++ {
			fmt.Fprintf(&b, " $pvtrail/pv-initrd.img.%d", j)
		}
		b.WriteString("\n")
	}
	b.WriteString("  else\n    initrd $pvtrail/pv-initrd.img\n  fi")
	return b.String()
}

// Config renders grub.cfg from the template text.
func Config(tmpl string, d ConfigData) ([]byte, error) {
	if d.StorageLabel == "" || strings.ContainsAny(d.StorageLabel, " \"'$;\n") {
		return nil, fmt.Errorf("grub.cfg: bad storage label %q", d.StorageLabel)
	}
	if strings.ContainsAny(d.Cmdline+d.BaseArgs, "\"'$;\n{}") {
		return nil, fmt.Errorf("grub.cfg: kernel arguments may not contain quotes, $, ; or braces")
	}
	if d.BaseArgs == "" {
		d.BaseArgs = DefaultBaseArgs
	}
	d.InitrdChain = initrdChain(MaxAddons)
	t, err := template.New("grub.cfg").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("grub.cfg template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("grub.cfg template: %w", err)
	}
	return b.Bytes(), nil
}

// EarlyConfig is embedded into the GRUB images: it finds the ESP by label
// and hands over to its grub.cfg, for UEFI and BIOS alike.
func EarlyConfig(espLabel string) []byte {
	return []byte(fmt.Sprintf("search --no-floppy --label %s --set root\nset prefix=($root)/EFI/BOOT\nconfigfile ($root)/EFI/BOOT/grub.cfg\n", espLabel))
}
