package builder

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/boot"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// rpiFirmwareDir is where Debian's raspi-firmware keeps the GPU firmware.
const rpiFirmwareDir = "usr/lib/raspi-firmware"

// makeRpiBoot makes the rpiab boot FAT image (boot.RpiBoot) and its gzip,
// cached by their inputs: work/boot/ gets pantavisor-rpi.img and
// bootcode.bin for the image stage, the BSP pantavisor-rpi.img.gz (the
// image the runtime writes onto the try partition on an update).
func (b *run) makeRpiBoot(pk *packages, bsp *bspFiles, run map[string]any) (string, error) {
	if pk.Kernel == "" || pk.Firmware == "" {
		return "", fmt.Errorf("rpiab: needs a kernel and the raspi-firmware package in firmware.packages")
	}
	fw := filepath.Join(pk.Firmware, rpiFirmwareDir)
	dtbs, err := boot.RpiDTBs(pk.Kernel, pk.KernelVer)
	if err != nil {
		return "", err
	}
	rb := boot.RpiBoot{Recipe: b.r, Kernel: filepath.Join(pk.Kernel, "boot", "vmlinuz-"+pk.KernelVer),
		Initrd: bsp.Objects["pantavisor"], DTBs: dtbs, Firmware: fw}
	for _, a := range b.r.Addons {
		rb.Addons = append(rb.Addons, bsp.Objects[addonFile(b.r, a)])
	}
	// The key: every file the image holds (by content) and what shapes
	// config.txt, cmdline.txt and the file system (the recipe, this
	// program).
	h := sha256.New()
	fmt.Fprintf(h, "rpiboot v1\nmkimage %s\narch %s\ncmdline %q\nparts %#v\n", selfID(), b.r.Arch, b.r.Kernel.Cmdline, b.r.Disk.Partitions)
	ents, err := os.ReadDir(fw)
	if err != nil {
		return "", fmt.Errorf("rpiab: firmware: %w", err)
	}
	inputs := append([]string{rb.Kernel, rb.Initrd}, rb.Addons...)
	inputs = append(inputs, dtbs...)
	for _, e := range ents {
		inputs = append(inputs, filepath.Join(fw, e.Name()))
	}
	for _, p := range inputs {
		sum, err := trail.FileSHA(p)
		if err != nil {
			return "", fmt.Errorf("rpiab: %w", err)
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(p), sum)
	}
	key := hex.EncodeToString(h.Sum(nil))[:32]
	art := filepath.Join(b.o.Cache, "artifacts", "rpiboot-"+key)
	img, gz := art+".img", art+".img.gz"
	cached := true
	if _, err := os.Stat(gz); err != nil {
		cached = false
		if err := os.MkdirAll(filepath.Dir(art), 0o755); err != nil {
			return "", err
		}
		if err := rb.Make(img + ".tmp"); err != nil {
			return "", err
		}
		if err := gzipFile(img+".tmp", gz+".tmp"); err != nil {
			return "", err
		}
		if err := os.Rename(img+".tmp", img); err != nil {
			return "", err
		}
		if err := os.Rename(gz+".tmp", gz); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(b.work, "boot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for dst, src := range map[string]string{boot.RpiBootImage: img, "bootcode.bin": filepath.Join(fw, "bootcode.bin")} {
		out := filepath.Join(dir, dst)
		os.Remove(out)
		if err := os.Link(src, out); err != nil {
			if err := copyFile(src, out); err != nil {
				return "", err
			}
		}
	}
	name := boot.RpiBootImage + ".gz"
	bsp.Objects[name] = gz
	// The kernel is inside the boot image: run.json's rpiab excludes
	// linux (the runtime refuses both).
	// The kernel, the initrd and its addons are inside the boot image:
	// run.json's rpiab excludes linux and initrd (the runtime refuses
	// them together).
	delete(bsp.Objects, "kernel.img")
	delete(bsp.Objects, "pantavisor")
	delete(run, "linux")
	delete(run, "initrd")
	run["rpiab"] = name
	b.setSize(name, size(gz))
	return fmt.Sprintf("%s %d MiB (%d device trees, cached=%v)", name, size(gz)>>20, len(dtbs), cached), nil
}

// gzipFile writes the gzip of src to dst; the header has no name and no
// time, so the output is a function of the input.
func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
