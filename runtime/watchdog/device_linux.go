package watchdog

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// linux/watchdog.h: _IOR('W', 5, int) and _IOWR('W', 6, int).
const (
	wdiocKeepalive  = 0x80045705
	wdiocSetTimeout = 0xc0045706
)

// OpenDevice opens a watchdog character device such as /dev/watchdog.
func OpenDevice(path string) Opener {
	return func() (Device, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return &device{f: f}, nil
	}
}

type device struct{ f *os.File }

func (d *device) SetTimeout(t time.Duration) (time.Duration, error) {
	sec := int(t / time.Second)
	if err := d.ioctl(wdiocSetTimeout, &sec); err != nil {
		return 0, &os.PathError{Op: "WDIOC_SETTIMEOUT", Path: d.f.Name(), Err: err}
	}
	return time.Duration(sec) * time.Second, nil
}

func (d *device) Keepalive() error {
	var dummy int
	if err := d.ioctl(wdiocKeepalive, &dummy); err != nil {
		return &os.PathError{Op: "WDIOC_KEEPALIVE", Path: d.f.Name(), Err: err}
	}
	return nil
}

func (d *device) ioctl(req uint, arg *int) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	v := int32(*arg) // the kernel reads and writes a C int
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&v)))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	*arg = int(v)
	return nil
}

func (d *device) Close(magic bool) error {
	if magic {
		if _, err := d.f.Write([]byte("V")); err != nil {
			d.f.Close()
			return fmt.Errorf("magic close %s: %w", d.f.Name(), err)
		}
	}
	return d.f.Close()
}
