//go:build linux

package ctrl

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peer is the process that connected a unix socket, pinned by a pidfd
// where the kernel has them.
type peer struct {
	pid   int
	pidfd int // -1: none (kernel before 5.3)
}

// peerOf returns the process on the other end of a unix socket
// connection. The pidfd comes from SO_PEERPIDFD (Linux 6.5), which names
// the process that called connect(2) even if its pid was reused since;
// older kernels get pidfd_open(SO_PEERCRED pid), which pins the pid from
// now on (a peer that exited and whose pid was reused between connect and
// accept is not caught there).
func peerOf(c net.Conn) (peer, error) { return peerOfConn(c, true) }

// peerOfConn is peerOf; without usePeerPidfd it takes the pidfd_open path
// of kernels before 6.5 (tests).
func peerOfConn(c net.Conn, usePeerPidfd bool) (peer, error) {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{}, fmt.Errorf("peer credentials: not a unix socket (%T)", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	p := peer{pidfd: -1}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if serr != nil {
			return
		}
		p.pid = int(cred.Pid)
		pidfd, err := -1, error(unix.ENOPROTOOPT)
		if usePeerPidfd {
			pidfd, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
		if err == nil {
			p.pidfd = pidfd
			return
		}
		if !errors.Is(err, unix.ENOPROTOOPT) && !errors.Is(err, unix.EINVAL) {
			// The kernel has SO_PEERPIDFD but could not pin the peer:
			// it is gone (ESRCH) or we are out of fds.
			serr = fmt.Errorf("SO_PEERPIDFD: %w", err)
			return
		}
		pidfd, err = unix.PidfdOpen(p.pid, 0)
		switch {
		case err == nil:
			p.pidfd = pidfd
		case !errors.Is(err, unix.ENOSYS):
			serr = fmt.Errorf("pidfd_open %d: %w", p.pid, err)
		}
	}); err != nil {
		return peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return peer{}, fmt.Errorf("peer credentials: %w", serr)
	}
	if p.pid <= 0 {
		// The peer is outside our pid namespace.
		p.close()
		return peer{}, fmt.Errorf("peer credentials: pid %d not visible", p.pid)
	}
	return p, nil
}

// alive reports whether the pinned process still runs: a read of
// /proc/<pid> made before a true answer was of that process, not of one
// that reused its pid. Without a pidfd it cannot tell and says true.
func (p peer) alive() bool {
	if p.pidfd < 0 {
		return true
	}
	err := unix.PidfdSendSignal(p.pidfd, 0, nil, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

func (p peer) close() {
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
	}
}
