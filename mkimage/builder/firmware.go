package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/ubootbuild"
)

// FlashName is the file name of the firmware a recipe builds from source
// (bootloader.source), beside the image: the padded flash image
// (<target>.pflash.img) or the binary itself.
func FlashName(r *recipe.Recipe) string {
	if r.Bootloader.FlashMiB > 0 {
		return r.Name + ".pflash.img"
	}
	return r.Name + "." + r.Bootloader.Binary
}

// makeFirmware builds the boot loader from its source package
// (mkimage/ubootbuild, cached by content) and writes it beside the image,
// padded with 0xff (erased flash) to bootloader.flash_mib; a file with
// the same bytes is left alone.
func (b *run) makeFirmware(ctx context.Context) (string, error) {
	r := b.r
	if r.Bootloader.Source == "" {
		return "", nil
	}
	a, err := arch.Lookup(r.Arch)
	if err != nil {
		return "", err
	}
	bin, cached, err := ubootbuild.Build(ctx, ubootbuild.Options{Cache: b.o.Cache, Arch: a, Mirror: r.Debian.Mirror, Suite: r.Debian.Suite,
		Offline: b.o.Offline, Source: r.Bootloader.Source, Defconfig: r.Bootloader.Defconfig,
		Fragments: filepath.Join(b.o.Repo, r.Bootloader.Fragments), Binary: r.Bootloader.Binary, Epoch: b.o.Epoch, Log: b.o.Log})
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	if n := r.Bootloader.FlashMiB << 20; n > 0 {
		if len(data) > n {
			return "", fmt.Errorf("bootloader: %s is %d bytes, larger than the %d MiB flash", r.Bootloader.Binary, len(data), r.Bootloader.FlashMiB)
		}
		data = append(data, bytes.Repeat([]byte{0xff}, n-len(data))...)
	}
	out := filepath.Join(b.o.Out, FlashName(r))
	b.setSize("firmware", int64(len(data)))
	how := "built"
	if cached {
		how = "cached"
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, data) {
		return fmt.Sprintf(", %s %s unchanged", FlashName(r), how), nil
	}
	if err := os.WriteFile(out+".tmp", data, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return "", err
	}
	return fmt.Sprintf(", %s (%s %s)", FlashName(r), r.Bootloader.Binary, how), nil
}
