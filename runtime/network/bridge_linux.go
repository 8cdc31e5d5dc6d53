package network

import (
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreqAddr is struct ifreq with a sockaddr_in in its union.
type ifreqAddr struct {
	Name [unix.IFNAMSIZ]byte
	Addr unix.RawSockaddrInet4
	_    [8]byte
}

// ifreqFlags is struct ifreq with ifr_flags.
type ifreqFlags struct {
	Name  [unix.IFNAMSIZ]byte
	Flags uint16
	_     [22]byte
}

// Bridge creates the bridge name (an existing one is kept), gives it addr
// (its primary IPv4 address and netmask) and brings it up.
func Bridge(name string, addr netip.Prefix) error {
	_, err := bridge(name, addr)
	return err
}

// bridge is Bridge; created tells whether the bridge was made here.
func bridge(name string, addr netip.Prefix) (created bool, err error) {
	if err := ValidIfName(name); err != nil {
		return created, err
	}
	if !addr.IsValid() || !addr.Addr().Is4() {
		return created, fmt.Errorf("bridge %s: %v is not an IPv4 address with a prefix", name, addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return created, fmt.Errorf("bridge %s: socket: %w", name, err)
	}
	defer unix.Close(fd)
	cname, err := unix.BytePtrFromString(name)
	if err != nil {
		return created, fmt.Errorf("bridge %s: %w", name, ErrBadName)
	}
	switch _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCBRADDBR, uintptr(unsafe.Pointer(cname))); {
	case errno == 0:
		created = true
	case !errors.Is(errno, unix.EEXIST):
		return created, fmt.Errorf("create bridge %s: %w", name, errno)
	}
	req := ifreqAddr{}
	copy(req.Name[:], name)
	req.Addr.Family = unix.AF_INET
	req.Addr.Addr = addr.Addr().As4()
	if err := ioctl(fd, unix.SIOCSIFADDR, unsafe.Pointer(&req)); err != nil {
		return created, fmt.Errorf("bridge %s: set address %s: %w", name, addr.Addr(), err)
	}
	var m [4]byte
	for i := 0; i < addr.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	req.Addr.Addr = m
	if err := ioctl(fd, unix.SIOCSIFNETMASK, unsafe.Pointer(&req)); err != nil {
		return created, fmt.Errorf("bridge %s: set netmask /%d: %w", name, addr.Bits(), err)
	}
	fl := ifreqFlags{}
	copy(fl.Name[:], name)
	if err := ioctl(fd, unix.SIOCGIFFLAGS, unsafe.Pointer(&fl)); err != nil {
		return created, fmt.Errorf("bridge %s: get flags: %w", name, err)
	}
	fl.Flags |= unix.IFF_UP
	if err := ioctl(fd, unix.SIOCSIFFLAGS, unsafe.Pointer(&fl)); err != nil {
		return created, fmt.Errorf("bridge %s: up: %w", name, err)
	}
	return created, nil
}

// DeleteBridge brings the bridge name down and removes it.
func DeleteBridge(name string) error {
	if err := ValidIfName(name); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bridge %s: socket: %w", name, err)
	}
	defer unix.Close(fd)
	fl := ifreqFlags{}
	copy(fl.Name[:], name)
	if err := ioctl(fd, unix.SIOCGIFFLAGS, unsafe.Pointer(&fl)); err == nil {
		fl.Flags &^= unix.IFF_UP
		_ = ioctl(fd, unix.SIOCSIFFLAGS, unsafe.Pointer(&fl))
	}
	cname, _ := unix.BytePtrFromString(name)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCBRDELBR, uintptr(unsafe.Pointer(cname))); errno != 0 {
		return fmt.Errorf("delete bridge %s: %w", name, errno)
	}
	return nil
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
