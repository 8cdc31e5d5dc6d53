package bootloader

import (
	"fmt"
	"io"
	"os"
	"unsafe"

	diskfs "github.com/diskfs/go-diskfs"
	"golang.org/x/sys/unix"
)

// DiskPartitions edits FAT boot partitions in place through their block
// devices (or image files), without mtools.
type DiskPartitions struct {
	Device func(part int) string
}

// ReadFile reads /name from the FAT on partition part.
func (d DiskPartitions) ReadFile(part int, name string) ([]byte, error) {
	disk, err := diskfs.Open(d.Device(part), diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, err
	}
	defer disk.Close()
	fs, err := disk.GetFilesystem(0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Device(part), err)
	}
	f, err := fs.OpenFile("/"+name, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s:/%s: %w", d.Device(part), name, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile replaces /name on the FAT of partition part.
func (d DiskPartitions) WriteFile(part int, name string, data []byte) error {
	disk, err := diskfs.Open(d.Device(part), diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return err
	}
	defer disk.Close()
	fs, err := disk.GetFilesystem(0)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Device(part), err)
	}
	f, err := fs.OpenFile("/"+name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("%s:/%s: %w", d.Device(part), name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%s:/%s: %w", d.Device(part), name, err)
	}
	return f.Close()
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

// VCMailbox talks to the VideoCore firmware through /dev/vcio.
type VCMailbox struct{}

// SetTryboot sets the firmware's reboot flags (tag SET_REBOOT_FLAGS).
func (VCMailbox) SetTryboot(on bool) error {
	f, err := os.OpenFile("/dev/vcio", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("firmware mailbox: %w", err)
	}
	defer f.Close()
	var flags uint32
	if on {
		flags = 1
	}
	// size, request, tag, value size, tag request, value, end tag
	msg := [7]uint32{7 * 4, 0, 0x00038064, 4, 0, flags, 0}
	const mboxProperty = 0xc0086400 // _IOWR(100, 0, char *)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), mboxProperty, uintptr(unsafe.Pointer(&msg[0]))); errno != 0 {
		return fmt.Errorf("firmware mailbox: set reboot flags: %w", errno)
	}
	if msg[1] != 0x80000000 {
		return fmt.Errorf("firmware mailbox: set reboot flags: response %#x", msg[1])
	}
	return nil
}
