package volume

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	loopControl = "/dev/loop-control"
	loopMajor   = 7
)

// loopBase is PV_LOOP_INDEX_BASE: below 0 the kernel picks free loop
// devices (LOOP_CTL_GET_FREE); otherwise they are the free ones from
// /dev/loop<loopBase> up, which keeps Pantavisor's off the host's
// (App Engine) or off indexes the BSP reserves.
var loopBase atomic.Int64

func init() { loopBase.Store(-1) }

// SetLoopIndexBase sets the first loop device index volumes use (see
// loopBase); INIT sets it from PV_LOOP_INDEX_BASE.
func SetLoopIndexBase(n int) { loopBase.Store(int64(n)) }

// loopSpan bounds the search for a free device above the base.
const loopSpan = 1024

// freeLoop returns the index of a loop device to try: the kernel's pick,
// or the first unbound one from the base, created when missing. from is
// where the search starts (above a device lost to a race).
func freeLoop(ctl *os.File, from int) (int, error) {
	if from < 0 {
		return unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	}
	for n := from; n < from+loopSpan; n++ {
		// LOOP_CTL_ADD makes the device if it is missing (EEXIST otherwise).
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), unix.LOOP_CTL_ADD, uintptr(n)); e != 0 && e != unix.EEXIST {
			return 0, fmt.Errorf("add loop%d: %w", n, e)
		}
		dev, err := openLoop(n, os.O_RDONLY)
		if err != nil {
			return 0, err
		}
		_, err = unix.IoctlLoopGetStatus64(int(dev.Fd()))
		dev.Close()
		if errors.Is(err, unix.ENXIO) {
			return n, nil // unbound
		}
	}
	return 0, fmt.Errorf("no free loop device in loop%d..loop%d", from, from+loopSpan-1)
}

// attachLoop binds file to a free loop device with autoclear set, so the
// device detaches itself once the returned *os.File is closed and no mount
// uses it any more. The caller mounts the device, then closes the file.
func attachLoop(file string, readOnly bool) (*os.File, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open volume: %w", err)
	}
	defer backing.Close()
	ctl, err := os.OpenFile(loopControl, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", loopControl, err)
	}
	defer ctl.Close()
	var last error
	from := int(loopBase.Load())
	// Another process may grab the free device between GET_FREE and
	// CONFIGURE; EBUSY then means "ask again".
	for attempt := 0; attempt < 16; attempt++ {
		n, err := freeLoop(ctl, from)
		if err != nil {
			return nil, fmt.Errorf("get free loop device: %w", err)
		}
		if from >= 0 {
			from = n + 1 // lost to a race: search above it
		}
		dev, err := openLoop(n, flag)
		if err != nil {
			return nil, err
		}
		lflags := uint32(unix.LO_FLAGS_AUTOCLEAR)
		if readOnly {
			lflags |= unix.LO_FLAGS_READ_ONLY
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = lflags
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			// Kernels before 5.8 lack LOOP_CONFIGURE.
			err = legacyConfigure(dev, backing, cfg.Info)
		}
		if err == nil {
			return dev, nil
		}
		dev.Close()
		last = err
		if !errors.Is(err, unix.EBUSY) {
			break
		}
	}
	return nil, fmt.Errorf("configure loop device for %s: %w", file, last)
}

func legacyConfigure(dev, backing *os.File, info unix.LoopInfo64) error {
	if err := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(int(dev.Fd()), &info); err != nil {
		_ = unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// openLoop opens /dev/loop<n>, creating the node when /dev is a plain tmpfs
// without devtmpfs/udev filling it in.
func openLoop(n, flag int) (*os.File, error) {
	path := fmt.Sprintf("/dev/loop%d", n)
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, os.ErrNotExist) {
		if merr := unix.Mknod(path, unix.S_IFBLK|0o660, int(unix.Mkdev(loopMajor, uint32(n)))); merr != nil && !errors.Is(merr, os.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", path, merr)
		}
		f, err = os.OpenFile(path, flag, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// AttachLoop binds file read-write to a free loop device with autoclear
// set (see attachLoop): the device goes once the returned file is closed
// and nothing else (a mount, a device-mapper target) holds it.
func AttachLoop(file string) (*os.File, error) { return attachLoop(file, false) }
