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
// tree (from the boot partition) matching it, and the UART the console
// is on: its kernel name and its QEMU serial port (-serial, in order).
// QEMU wires its first serial port to the PL011 (uart0, ttyAMA0) and its
// second to the mini UART (uart1, ttyS1). On the Pi 3 the PL011 talks to
// the Bluetooth chip: the mainline device tree gives uart0 a
// brcm,bcm43438-bt child, so Linux makes it a serdev bus for hci_uart and
// keys sent to it never reach a terminal (the console still prints
// there). The Pi 3's header UART, and its device tree's stdout-path, is
// the mini UART (enable_uart=1), ttyS1: the console= the targets'
// cmdline.txt ends with. The Pi 2 has no Bluetooth: its header UART is the
// PL011.
var RaspiMachine = map[string]struct {
	Machine, DTB string
	Console      string
	Serial       int
}{
	"arm64": {"raspi3b", "bcm2837-rpi-3-b.dtb", "ttyS1", 1},
	"armhf": {"raspi2b", "bcm2836-rpi-2-b.dtb", "ttyAMA0", 0},
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
// cmdline.txt with its console= arguments replaced by the machine's
// header UART (the Pi kernel's alias serial0 means nothing to Debian's).
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
			continue // tty1 has no display here
		}
		args = append(args, a)
	}
	rb.Cmdline = strings.Join(append(args, "console="+m.Console+",115200"), " ")
	return rb, nil
}

// raspiArgs are QEMU's arguments for o.Raspi: the machine's fixed RAM (a
// raspi machine refuses any other -m), the image as its SD card (whose
// size must be a power of two) and standard input and output on the
// console's UART (the ports before it unconnected).
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
	args := []string{"-machine", m.Machine, "-accel", "tcg", "-m", "1024", "-nographic", "-no-reboot", "-display", "none",
		"-kernel", r.Kernel, "-dtb", r.DTB, "-initrd", r.Initrd, "-append", r.Cmdline,
		"-drive", "file=" + o.Image + ",format=raw,if=sd"}
	if m.Serial > 0 {
		// An explicit -serial replaces -nographic's mon:stdio on the first.
		for range m.Serial {
			args = append(args, "-serial", "null")
		}
		args = append(args, "-serial", "mon:stdio")
	}
	return args, nil
}
