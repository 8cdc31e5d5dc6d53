package boottest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
)

// Raspi boots an rpiab image on QEMU's emulated Raspberry Pi (raspi3b
// for arm64, raspi2b for armhf). QEMU runs no Pi GPU firmware, so it
// loads what the firmware would: the kernel, device tree and initramfs
// files of the image's boot_a partition with cmdline.txt; the image is
// the SD card. The firmware stage itself cannot be emulated.
const Raspi Firmware = "raspi"

// RaspiMachine is the QEMU machine per Debian architecture, the device
// tree (from the boot partition) matching it, and the kernel file
// config.txt names.
var RaspiMachine = map[string]struct{ Machine, DTB string }{
	"arm64": {"raspi3b", "bcm2837-rpi-3-b.dtb"},
	"armhf": {"raspi2b", "bcm2836-rpi-2-b.dtb"},
}

// RaspiBoot are the files QEMU loads instead of the Pi firmware, read
// from the image's boot partition.
type RaspiBoot struct {
	Kernel, DTB, Initrd string
	Cmdline             string
}

// ReadRaspiBoot extracts the kernel (config.txt's kernel=), the device
// tree of QEMU's machine and the initramfs list (config.txt's
// "initramfs a,b followkernel", concatenated as the firmware loads them)
// from the FAT boot partition at byte offset off of img into dir, and
// cmdline.txt with the firmware's console alias serial0 made ttyAMA0 (the
// PL011 QEMU's raspi machines wire to the first serial port).
func ReadRaspiBoot(img string, off int64, debArch, dir string) (RaspiBoot, error) {
	m, ok := RaspiMachine[debArch]
	if !ok {
		return RaspiBoot{}, fmt.Errorf("boottest: no raspi machine for %s", debArch)
	}
	read := func(name string) ([]byte, error) {
		cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img, off), "::/"+name)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("boottest: mtype %s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return out, nil
	}
	cfg, err := read("config.txt")
	if err != nil {
		return RaspiBoot{}, err
	}
	var kernel string
	var initrds []string
	for _, l := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "kernel="):
			kernel = strings.TrimPrefix(f[0], "kernel=")
		case len(f) >= 2 && f[0] == "initramfs":
			initrds = strings.Split(f[1], ",")
		}
	}
	if kernel == "" || len(initrds) == 0 {
		return RaspiBoot{}, fmt.Errorf("boottest: config.txt names no kernel= or initramfs: %q", cfg)
	}
	rb := RaspiBoot{Kernel: filepath.Join(dir, "kernel"), DTB: filepath.Join(dir, m.DTB), Initrd: filepath.Join(dir, "initrd")}
	for path, names := range map[string][]string{rb.Kernel: {kernel}, rb.DTB: {m.DTB}, rb.Initrd: initrds} {
		var data []byte
		for _, n := range names {
			b, err := read(n)
			if err != nil {
				return RaspiBoot{}, err
			}
			data = append(data, b...)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return RaspiBoot{}, err
		}
	}
	cl, err := read("cmdline.txt")
	if err != nil {
		return RaspiBoot{}, err
	}
	var args []string
	for _, a := range strings.Fields(string(cl)) {
		if strings.HasPrefix(a, "console=") {
			continue // tty1 has no display here; serial0 is the firmware's
		}
		args = append(args, a)
	}
	rb.Cmdline = strings.Join(append(args, "console=ttyAMA0,115200"), " ")
	return rb, nil
}

// raspiArgs are QEMU's arguments for o.Raspi: the machine's fixed RAM (a
// raspi machine refuses any other -m) and the image as its SD card (whose
// size must be a power of two).
func raspiArgs(o Options, a arch.Arch) ([]string, error) {
	m, ok := RaspiMachine[a.Debian]
	if !ok || o.Raspi == nil {
		return nil, fmt.Errorf("boottest: raspi boot of %s needs RaspiMachine and Options.Raspi", a.Debian)
	}
	fi, err := os.Stat(o.Image)
	if err != nil {
		return nil, err
	}
	if n := fi.Size(); n&(n-1) != 0 {
		return nil, fmt.Errorf("boottest: %s: an SD card image's size must be a power of two, not %d", o.Image, n)
	}
	r := o.Raspi
	return []string{"-machine", m.Machine, "-accel", "tcg", "-m", "1024", "-nographic", "-no-reboot", "-display", "none",
		"-kernel", r.Kernel, "-dtb", r.DTB, "-initrd", r.Initrd, "-append", r.Cmdline,
		"-drive", "file=" + o.Image + ",format=raw,if=sd"}, nil
}
