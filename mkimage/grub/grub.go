// Package grub produces what a GRUB-booted Pantavisor image needs: the
// grubenv block on the storage, grub.cfg implementing the pv_rev/pv_try
// contract, the GRUB images (BOOTX64.EFI, i386-pc core.img) made with
// grub-mkimage from Debian's grub-*-bin, and the BIOS installation into
// the disk image (boot.img in the MBR, core.img in the BIOS boot
// partition), patched in Go instead of running grub-bios-setup on a device.
//
//	env := grub.Env(map[string]string{"pv_rev": "0"}) // 1024 bytes
//	cfg, err := grub.Config(tmpl, grub.ConfigData{StorageLabel: "root", ...})
//	efi, err := grub.MkImage(ctx, grub.EFI, early, "/EFI/BOOT")
//	err = grub.InstallBIOS(img, bootImg, coreImg, coreLBA)
package grub

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"
)

// EnvSize is the size of a GRUB environment block.
const EnvSize = 1024

const envHeader = "# GRUB Environment Block\n"

// ErrEnvTooBig means the variables do not fit into the 1024-byte block.
var ErrEnvTooBig = errors.New("grubenv: variables exceed 1024 bytes")

// Env renders a GRUB environment block: header, sorted key=value lines,
// '#' padding to exactly 1024 bytes (Pantavisor reads exactly 1024).
func Env(vars map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if k == "" || strings.ContainsAny(k, "=\n\\") || strings.ContainsAny(vars[k], "\n\\") {
			return nil, fmt.Errorf("grubenv: bad variable %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString(envHeader)
	for _, k := range keys {
		b.WriteString(k + "=" + vars[k] + "\n")
	}
	if b.Len() > EnvSize {
		return nil, ErrEnvTooBig
	}
	b.Write(bytes.Repeat([]byte{'#'}, EnvSize-b.Len()))
	return b.Bytes(), nil
}

// ParseEnv reads a GRUB environment block.
func ParseEnv(data []byte) (map[string]string, error) {
	if !bytes.HasPrefix(data, []byte(envHeader)) {
		return nil, errors.New("grubenv: missing header")
	}
	vars := map[string]string{}
	for _, l := range strings.Split(string(data[len(envHeader):]), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("grubenv: bad line %q", l)
		}
		vars[k] = v
	}
	return vars, nil
}

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
