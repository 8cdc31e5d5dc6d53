//go:build !linux

package metadata

import "errors"

var errNotLinux = errors.New("not supported outside Linux")

// ReadUname returns uname(2) of the running kernel (Linux only).
func ReadUname() (Uname, error) { return Uname{}, errNotLinux }

// ReadSysinfo returns sysinfo(2) (Linux only).
func ReadSysinfo() (Sysinfo, error) { return Sysinfo{}, errNotLinux }
