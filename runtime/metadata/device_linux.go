package metadata

import (
	"fmt"
	"syscall"
)

// ReadUname returns uname(2) of the running kernel.
func ReadUname() (Uname, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return Uname{}, fmt.Errorf("uname: %w", err)
	}
	return Uname{
		KernelName:    cstr(u.Sysname[:]),
		KernelRelease: cstr(u.Release[:]),
		KernelVersion: cstr(u.Version[:]),
		NodeName:      cstr(u.Nodename[:]),
		Machine:       cstr(u.Machine[:]),
	}, nil
}

// ReadSysinfo returns sysinfo(2).
func ReadSysinfo() (Sysinfo, error) {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return Sysinfo{}, fmt.Errorf("sysinfo: %w", err)
	}
	return Sysinfo{
		Uptime:    int64(si.Uptime),
		Loads0:    uint64(si.Loads[0]),
		Loads1:    uint64(si.Loads[1]),
		Loads2:    uint64(si.Loads[2]),
		TotalRAM:  uint64(si.Totalram),
		FreeRAM:   uint64(si.Freeram),
		SharedRAM: uint64(si.Sharedram),
		BufferRAM: uint64(si.Bufferram),
		TotalSwap: uint64(si.Totalswap),
		FreeSwap:  uint64(si.Freeswap),
		Procs:     uint64(si.Procs),
		TotalHigh: uint64(si.Totalhigh),
		FreeHigh:  uint64(si.Freehigh),
		MemUnit:   uint64(si.Unit),
	}, nil
}

// cstr converts a NUL-terminated C char array (int8 or uint8 per arch).
func cstr[T int8 | uint8](a []T) string {
	b := make([]byte, 0, len(a))
	for _, c := range a {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
