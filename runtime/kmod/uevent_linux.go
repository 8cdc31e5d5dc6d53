//go:build linux

package kmod

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ueventConn is a netlink KOBJECT_UEVENT socket subscribed to the
// kernel's multicast group.
type ueventConn struct {
	f   *os.File
	buf []byte
}

// OpenUevents subscribes to the kernel's uevents (needs CAP_NET_ADMIN in
// the initial network namespace, as PID 1 has).
func OpenUevents() (UeventSource, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("kmod: uevent socket: %w", err)
	}
	// A big receive buffer: coldplug makes bursts of events.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kmod: uevent socket: %w", err)
	}
	// Blocking reads through the runtime poller, so Close unblocks Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kmod: uevent socket: %w", err)
	}
	return &ueventConn{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, 64<<10)}, nil
}

func (c *ueventConn) Read() ([]byte, error) {
	n, err := c.f.Read(c.buf)
	if errors.Is(err, unix.ENOBUFS) {
		return nil, ErrOverflow
	}
	if err != nil {
		return nil, err
	}
	return c.buf[:n], nil
}

func (c *ueventConn) Close() error { return c.f.Close() }
