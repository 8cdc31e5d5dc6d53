package disk

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device-mapper ioctls (linux/dm-ioctl.h), spoken directly: no dmsetup
// or cryptsetup on the device.
const (
	dmControl   = "mapper/control"
	dmIoctlSize = 312 // sizeof(struct dm_ioctl)
	dmNameLen   = 128
	dmUUIDLen   = 129
	dmSpecSize  = 40 // sizeof(struct dm_target_spec)
	dmTypeLen   = 16

	dmDevCreate  = 3
	dmDevRemove  = 4
	dmDevSuspend = 6
	dmTableLoad  = 9
)

// dmCmd is _IOWR(0xfd, nr, struct dm_ioctl).
func dmCmd(nr uint) uint { return 3<<30 | dmIoctlSize<<16 | 0xfd<<8 | nr }

// dmTarget is one line of a table.
type dmTarget struct {
	Start, Length uint64 // sectors
	Type, Params  string
}

// dmBuffer lays out struct dm_ioctl for name, followed by targets.
func dmBuffer(name string, flags uint32, targets []dmTarget) ([]byte, error) {
	if name == "" || len(name) >= dmNameLen {
		return nil, fmt.Errorf("device-mapper name %q: %w", name, ErrBadDisk)
	}
	size := dmIoctlSize
	for _, t := range targets {
		if len(t.Type) >= dmTypeLen {
			return nil, fmt.Errorf("device-mapper target type %q: %w", t.Type, ErrBadDisk)
		}
		size += dmSpecSize + (len(t.Params)+1+7)&^7
	}
	size += 4096 // room for what the kernel writes back
	b := make([]byte, size)
	le := binary.NativeEndian
	le.PutUint32(b[0:], 4) // version 4.0.0
	le.PutUint32(b[12:], uint32(size))
	le.PutUint32(b[16:], dmIoctlSize)
	le.PutUint32(b[20:], uint32(len(targets)))
	le.PutUint32(b[28:], flags)
	copy(b[48:48+dmNameLen], name)
	off := dmIoctlSize
	for _, t := range targets {
		plen := (len(t.Params) + 1 + 7) &^ 7
		le.PutUint64(b[off:], t.Start)
		le.PutUint64(b[off+8:], t.Length)
		le.PutUint32(b[off+20:], uint32(dmSpecSize+plen)) // next: offset of the following spec
		copy(b[off+24:off+24+dmTypeLen], t.Type)
		copy(b[off+dmSpecSize:], t.Params)
		off += dmSpecSize + plen
	}
	return b, nil
}

func dmIoctl(devDir string, nr uint, b []byte) error {
	ctl, err := os.OpenFile(devDir+"/"+dmControl, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device-mapper: %w (kernel without CONFIG_BLK_DEV_DM, or dm_mod not loaded)", err)
	}
	defer ctl.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), uintptr(dmCmd(nr)), uintptr(unsafe.Pointer(&b[0]))); errno != 0 {
		return errno
	}
	return nil
}

// dmCreate makes device name with the one-target table t and activates
// it; it returns the device number.
func dmCreate(devDir, name string, t dmTarget) (uint64, error) {
	b, err := dmBuffer(name, 0, nil)
	if err != nil {
		return 0, err
	}
	if err := dmIoctl(devDir, dmDevCreate, b); err != nil {
		return 0, fmt.Errorf("device-mapper create %s: %w", name, err)
	}
	undo := func() { dmRemove(devDir, name) }
	if b, err = dmBuffer(name, 0, []dmTarget{t}); err != nil {
		undo()
		return 0, err
	}
	if err := dmIoctl(devDir, dmTableLoad, b); err != nil {
		undo()
		return 0, fmt.Errorf("device-mapper load %s table (%s): %w", name, t.Type, err)
	}
	b, _ = dmBuffer(name, 0, nil) // resume: DM_DEV_SUSPEND without DM_SUSPEND_FLAG
	if err := dmIoctl(devDir, dmDevSuspend, b); err != nil {
		undo()
		return 0, fmt.Errorf("device-mapper resume %s: %w", name, err)
	}
	return binary.NativeEndian.Uint64(b[40:]), nil
}

// dmRemove removes device name.
func dmRemove(devDir, name string) error {
	b, err := dmBuffer(name, 0, nil)
	if err != nil {
		return err
	}
	if err := dmIoctl(devDir, dmDevRemove, b); err != nil {
		return fmt.Errorf("device-mapper remove %s: %w", name, err)
	}
	return nil
}
