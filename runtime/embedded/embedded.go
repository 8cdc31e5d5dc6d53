// Package embedded is what Pantavisor needs when it runs as PID 1 from the
// initrd ("embedded" init mode): mount the kernel file systems, find the
// storage device by file system label and wait for it, grow it to the end
// of its disk on first boot (Autogrow: partition table, then ext4 online),
// mount it, reap orphaned children and reboot or power off. Kernel modules
// are runtime/kmod's.
//
//	if err := embedded.MountAll(embedded.BaseMounts); err != nil { ... }
//	dev, err := embedded.WaitDevice(ctx, "LABEL=root", 5*time.Second)
//	err = embedded.Mount{Source: dev, Target: "/storage", FSType: "ext4"}.Do()
//	go embedded.Reap(ctx, log)
//	...
//	embedded.Reboot(embedded.PowerOff)
//
// It is pure Go (golang.org/x/sys/unix); the Linux-only calls live in
// *_linux.go files, other systems get ErrUnsupported.
package embedded

import "errors"

// ErrUnsupported is returned by the system calls on non-Linux systems.
var ErrUnsupported = errors.New("embedded: not supported on this OS")

// ErrNoDevice means no block device matched the storage spec in time.
var ErrNoDevice = errors.New("storage device not found")

// Mount is one mount(2) call.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Mode of Target when it has to be created (0 = 0755).
	Mode uint32
}

// BaseMounts are the kernel file systems Pantavisor needs before anything
// else, in order.
var BaseMounts = []Mount{
	{Source: "proc", Target: "/proc", FSType: "proc", Flags: msNoSuid | msNoDev | msNoExec},
	{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: msNoSuid | msNoDev | msNoExec},
	{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: msNoSuid, Data: "mode=0755"},
	{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: msNoSuid | msNoExec, Data: "gid=5,mode=0620,ptmxmode=0666"},
	{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: msNoSuid | msNoDev, Data: "mode=1777"},
	{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: msNoSuid | msNoDev, Data: "mode=0755"},
	{Source: "tmpfs", Target: "/run/lock", FSType: "tmpfs", Flags: msNoSuid | msNoDev | msNoExec, Data: "mode=1777,size=5242880"},
	{Source: "cgroup2", Target: "/sys/fs/cgroup", FSType: "cgroup2", Flags: msNoSuid | msNoDev | msNoExec},
}

// SecurityFS is what PV_SYSTEM_MOUNT_SECURITYFS mounts: the security
// modules' interface (AppArmor's policy loading, IMA), which the kernel
// does not mount itself. It has one instance: mounting it again where it
// is fails with EBUSY, which Do takes as done.
var SecurityFS = Mount{Source: "securityfs", Target: "/sys/kernel/security", FSType: "securityfs", Flags: msNoSuid | msNoDev | msNoExec}

// mount flag values (identical on every Linux architecture).
const (
	msNoSuid = 0x2
	msNoDev  = 0x4
	msNoExec = 0x8
)

// RebootCmd selects what Reboot does.
type RebootCmd int

// Reboot commands.
const (
	Restart RebootCmd = iota
	PowerOff
	Halt
)
