package main

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// drmVersionArg is struct drm_version (include/uapi/drm/drm.h): the lengths
// are in/out, the pointers buffers the kernel fills.
type drmVersionArg struct {
	Major, Minor, Patch int32
	NameLen             uintptr
	Name                uintptr
	DateLen             uintptr
	Date                uintptr
	DescLen             uintptr
	Desc                uintptr
}

// drmIoctlVersion is DRM_IOCTL_VERSION, _IOWR('d', 0x00, struct drm_version).
var drmIoctlVersion = uintptr(3<<30 | unsafe.Sizeof(drmVersionArg{})<<16 | 'd'<<8)

// drmVersion opens node read-write (what a KMS client does) and prints
// "drm <node> char <major>:<minor> driver=<name> version=<x.y.z> desc=<desc>".
func drmVersion(node string) error {
	fd, err := unix.Open(node, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", node, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("%s is not a character device (mode %o)", node, st.Mode)
	}
	name, date, desc := make([]byte, 64), make([]byte, 64), make([]byte, 256)
	// The kernel writes through the pointers: keep the buffers in place.
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&name[0])
	pin.Pin(&date[0])
	pin.Pin(&desc[0])
	v := drmVersionArg{NameLen: uintptr(len(name)), Name: uintptr(unsafe.Pointer(&name[0])),
		DateLen: uintptr(len(date)), Date: uintptr(unsafe.Pointer(&date[0])),
		DescLen: uintptr(len(desc)), Desc: uintptr(unsafe.Pointer(&desc[0]))}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), drmIoctlVersion, uintptr(unsafe.Pointer(&v))); e != 0 {
		return fmt.Errorf("DRM_IOCTL_VERSION on %s: %w", node, e)
	}
	cut := func(b []byte, n uintptr) string { return string(b[:min(int(n), len(b))]) }
	fmt.Printf("drm %s char %d:%d driver=%s version=%d.%d.%d desc=%s\n", node, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)),
		cut(name, v.NameLen), v.Major, v.Minor, v.Patch, cut(desc, v.DescLen))
	return nil
}
