//go:build linux && (arm || 386)

package xconnect

import "golang.org/x/sys/unix"

// The 32-bit id system calls (the plain ones take 16-bit ids here).
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
