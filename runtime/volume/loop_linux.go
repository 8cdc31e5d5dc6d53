package volume

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const (
	loopControl = "/dev/loop-control"
	loopMajor   = 7
)

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
	// Another process may grab the free device between GET_FREE and
	// CONFIGURE; EBUSY then means "ask again".
	for attempt := 0; attempt < 16; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("get free loop device: %w", err)
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
