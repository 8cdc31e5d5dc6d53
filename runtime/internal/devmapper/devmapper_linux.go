// Package devmapper speaks the device-mapper ioctls (linux/dm-ioctl.h)
// directly, with no dmsetup or cryptsetup on the device: create a device
// with a one-target table, find or make its node, remove it. It is the one
// owner of that code; runtime/disk (dm-crypt) and runtime/volume
// (dm-verity) use it.
package devmapper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrBadName is returned for a device name or target type the kernel
// would refuse or truncate.
var ErrBadName = errors.New("bad device-mapper name")

// Control is the control node, relative to /dev.
const Control = "mapper/control"

const (
	ioctlSize = 312 // sizeof(struct dm_ioctl)
	nameLen   = 128
	specSize  = 40 // sizeof(struct dm_target_spec)
	typeLen   = 16

	devCreate  = 3
	devRemove  = 4
	devSuspend = 6
	tableLoad  = 9

	// readOnlyFlag (DM_READONLY_FLAG) loads a read-only table: the
	// verity target refuses any other.
	readOnlyFlag = 1 << 0
)

// cmd is _IOWR(0xfd, nr, struct dm_ioctl).
func cmd(nr uint) uint { return 3<<30 | ioctlSize<<16 | 0xfd<<8 | nr }

// Target is the one line of a table.
type Target struct {
	Start, Length uint64 // sectors
	Type, Params  string
	// ReadOnly loads the table read-only.
	ReadOnly bool
}

// buffer lays out struct dm_ioctl for name, followed by targets.
func buffer(name string, flags uint32, targets []Target) ([]byte, error) {
	if name == "" || len(name) >= nameLen {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	size := ioctlSize
	for _, t := range targets {
		if len(t.Type) >= typeLen {
			return nil, fmt.Errorf("%w: target type %q", ErrBadName, t.Type)
		}
		size += specSize + (len(t.Params)+1+7)&^7
	}
	size += 4096 // room for what the kernel writes back
	b := make([]byte, size)
	le := binary.NativeEndian
	le.PutUint32(b[0:], 4) // version 4.0.0
	le.PutUint32(b[12:], uint32(size))
	le.PutUint32(b[16:], ioctlSize)
	le.PutUint32(b[20:], uint32(len(targets)))
	le.PutUint32(b[28:], flags)
	copy(b[48:48+nameLen], name)
	off := ioctlSize
	for _, t := range targets {
		plen := (len(t.Params) + 1 + 7) &^ 7
		le.PutUint64(b[off:], t.Start)
		le.PutUint64(b[off+8:], t.Length)
		le.PutUint32(b[off+20:], uint32(specSize+plen)) // next: offset of the following spec
		copy(b[off+24:off+24+typeLen], t.Type)
		copy(b[off+specSize:], t.Params)
		off += specSize + plen
	}
	return b, nil
}

func ioctl(devDir string, nr uint, b []byte) error {
	ctl, err := os.OpenFile(filepath.Join(devDir, Control), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device-mapper: %w (kernel without CONFIG_BLK_DEV_DM, or dm_mod not loaded)", err)
	}
	defer ctl.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), uintptr(cmd(nr)), uintptr(unsafe.Pointer(&b[0]))); errno != 0 {
		return errno
	}
	return nil
}

// Available reports whether devDir has the control node.
func Available(devDir string) bool {
	_, err := os.Stat(filepath.Join(devDir, Control))
	return err == nil
}

// Create makes device name with the one-target table t and activates it;
// it returns the device number. On error nothing is left behind.
func Create(devDir, name string, t Target) (uint64, error) {
	b, err := buffer(name, 0, nil)
	if err != nil {
		return 0, err
	}
	if err := ioctl(devDir, devCreate, b); err != nil {
		return 0, fmt.Errorf("device-mapper create %s: %w", name, err)
	}
	undo := func() { Remove(devDir, name) }
	var flags uint32
	if t.ReadOnly {
		flags = readOnlyFlag
	}
	if b, err = buffer(name, flags, []Target{t}); err != nil {
		undo()
		return 0, err
	}
	if err := ioctl(devDir, tableLoad, b); err != nil {
		undo()
		return 0, fmt.Errorf("device-mapper load %s table (%s): %w", name, t.Type, err)
	}
	b, _ = buffer(name, 0, nil) // resume: DM_DEV_SUSPEND without DM_SUSPEND_FLAG
	if err := ioctl(devDir, devSuspend, b); err != nil {
		undo()
		return 0, fmt.Errorf("device-mapper resume %s: %w", name, err)
	}
	return binary.NativeEndian.Uint64(b[40:]), nil
}

// Remove removes device name.
func Remove(devDir, name string) error {
	b, err := buffer(name, 0, nil)
	if err != nil {
		return err
	}
	if err := ioctl(devDir, devRemove, b); err != nil {
		return fmt.Errorf("device-mapper remove %s: %w", name, err)
	}
	return nil
}

// Node returns a block device node of device devno (named name):
// devtmpfs's <devDir>/dm-<minor>, else one made in <devDir>/mapper.
func Node(devDir, name string, devno uint64) (string, error) {
	maj, min := unix.Major(devno), unix.Minor(devno)
	want := func(p string) bool {
		var st unix.Stat_t
		return unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && unix.Major(uint64(st.Rdev)) == maj && unix.Minor(uint64(st.Rdev)) == min
	}
	dm := filepath.Join(devDir, "dm-"+strconv.Itoa(int(min)))
	for i := 0; i < 10; i++ {
		if want(dm) {
			return dm, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	node := filepath.Join(devDir, "mapper", name)
	if want(node) {
		return node, nil
	}
	os.Remove(node)
	if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
		return "", err
	}
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min))); err != nil {
		return "", fmt.Errorf("mknod %s: %w", node, err)
	}
	return node, nil
}
