package bootloader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

// DiskPartitions edits FAT boot partitions in place through their block
// devices (or image files) with mtools, as upstream does on the Pi: no FAT
// driver in the kernel and no file system code in the init binary.
type DiskPartitions struct {
	Device func(part int) string
}

// mtools runs one mtools command; MTOOLS_SKIP_CHECK accepts the slightly
// unusual geometries of firmware-made FATs.
func mtools(args ...string) error {
	cmd := exec.Command(lookTool(args[0]), args[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// lookTool finds a program in PATH or, as PID 1 runs without one (the
// kernel sets no PATH for init), in the usual directories.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// ReadFile reads /name from the FAT on partition part.
func (d DiskPartitions) ReadFile(part int, name string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "pv-fat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "f")
	if err := mtools("mcopy", "-n", "-i", d.Device(part), "::/"+name, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// WriteFile replaces /name on the FAT of partition part.
func (d DiskPartitions) WriteFile(part int, name string, data []byte) error {
	tmp, err := os.MkdirTemp("", "pv-fat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	in := filepath.Join(tmp, "f")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		return err
	}
	return mtools("mcopy", "-o", "-i", d.Device(part), in, "::/"+name)
}

// WriteImage copies a raw filesystem image over partition part.
func (d DiskPartitions) WriteImage(part int, r io.Reader) error {
	f, err := os.OpenFile(d.Device(part), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// VCMailbox talks to the VideoCore firmware through /dev/vcio: the
// Raspberry Pi kernel's driver, or on mainline kernels (Debian's) our
// pv-vcio module (kernel-modules/pv-vcio), loaded when the device is
// missing.
type VCMailbox struct {
	Device string // default /dev/vcio
	// Load loads the module providing Device when it does not exist
	// (nil: no attempt; tests with a fake root).
	Load func() error
}

// LoadVCIO loads pv-vcio from the running kernel's modules (the BSP's
// modules.squashfs), as `modprobe pv-vcio` would.
func LoadVCIO() error {
	var out bytes.Buffer
	if err := kmod.Modprobe(context.Background(), []string{"pv-vcio"}, nil, &out, &out); err != nil {
		return fmt.Errorf("modprobe pv-vcio: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// mboxProperty is IOCTL_MBOX_PROPERTY, _IOWR(100, 0, char *): its size
// field is the pointer size (8 on arm64, 4 on armhf).
const mboxProperty = 0xc0006400 | uint(unsafe.Sizeof(uintptr(0)))<<16

// SetTryboot sets the firmware's reboot flags (tag SET_REBOOT_FLAGS).
func (m VCMailbox) SetTryboot(on bool) error {
	dev := m.Device
	if dev == "" {
		dev = "/dev/vcio"
	}
	var flags uint32
	if on {
		flags = 1
	}
	// size, request, tag, value size, tag request, value, end tag
	msg := [7]uint32{7 * 4, 0, 0x00038064, 4, 0, flags, 0}
	if err := m.call(dev, msg[:]); err != nil {
		return fmt.Errorf("firmware mailbox: set reboot flags: %w", err)
	}
	return nil
}

// Property sends one property message (size, code, tags, end tag) and
// returns the firmware's answer in place.
func (m VCMailbox) Property(msg []uint32) error {
	dev := m.Device
	if dev == "" {
		dev = "/dev/vcio"
	}
	return m.call(dev, msg)
}

func (m VCMailbox) call(dev string, msg []uint32) error {
	if len(msg) < 3 || msg[0] != uint32(4*len(msg)) {
		return fmt.Errorf("firmware mailbox: bad message size")
	}
	if _, err := os.Stat(dev); errors.Is(err, os.ErrNotExist) && m.Load != nil {
		if err := m.Load(); err != nil {
			return fmt.Errorf("firmware mailbox: %s missing: %w", dev, err)
		}
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("firmware mailbox: %w", err)
	}
	defer f.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(mboxProperty), uintptr(unsafe.Pointer(&msg[0]))); errno != 0 {
		return errno
	}
	if msg[1] != 0x80000000 {
		return fmt.Errorf("response %#x", msg[1])
	}
	return nil
}
