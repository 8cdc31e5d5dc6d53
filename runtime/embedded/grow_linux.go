//go:build linux

package embedded

import (
	"errors"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resizePartition tells the kernel partition pno of the open disk now has
// length bytes (BLKPG_RESIZE_PARTITION); where that is refused it asks it to
// read the whole table again (BLKRRPART, which needs no partition in use).
func resizePartition(disk *os.File, pno int, start, length int64) error {
	p := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(pno)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, disk.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	runtime.KeepAlive(&p)
	if errno == 0 {
		return nil
	}
	err := error(&os.SyscallError{Syscall: "ioctl BLKPG_RESIZE_PARTITION", Err: errno})
	if e := unix.IoctlSetInt(int(disk.Fd()), unix.BLKRRPART, 0); e != nil {
		return errors.Join(err, &os.SyscallError{Syscall: "ioctl BLKRRPART", Err: e})
	}
	return nil
}

// resizeExt4 grows the ext4 file system mounted at dir to blocks blocks
// (EXT4_IOC_RESIZE_FS, Linux 3.3+).
func resizeExt4(dir string, blocks uint64) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	n := blocks
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ext4ResizeFS(), uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return &os.SyscallError{Syscall: "ioctl EXT4_IOC_RESIZE_FS", Err: errno}
	}
	return nil
}

// ext4ResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): the write
// direction bit differs on mips, powerpc and sparc.
func ext4ResizeFS() uintptr {
	dir, shift := uintptr(1), 30
	switch runtime.GOARCH {
	case "mips", "mipsle", "mips64", "mips64le", "ppc", "ppc64", "ppc64le", "sparc", "sparc64":
		dir, shift = 4, 29
	}
	return dir<<shift | 8<<16 | 'f'<<8 | 16
}
