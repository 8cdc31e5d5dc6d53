//go:build linux

package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Do mounts m, creating its target; an already mounted target is fine.
func (m Mount) Do() error {
	mode := os.FileMode(m.Mode)
	if mode == 0 {
		mode = 0o755
	}
	if err := os.MkdirAll(m.Target, mode); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, m.Target, err)
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil
		}
		return &os.PathError{Op: "mount " + m.Source + " (" + m.FSType + ") on", Path: m.Target, Err: err}
	}
	return nil
}

// MountAll mounts ms in order and stops at the first failure.
func MountAll(ms []Mount) error {
	for _, m := range ms {
		if err := m.Do(); err != nil {
			return err
		}
	}
	return nil
}

// Reap collects every exited child (PID 1 inherits all orphans) until ctx
// ends. Children a caller waits for itself should be started before and
// waited through their own pidfd or exec.Cmd: Reap takes any child.
func Reap(ctx context.Context, log *slog.Logger) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	for {
		ReapOnce(log)
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// ReapOnce reaps every child that has exited so far and returns how many.
func ReapOnce(log *slog.Logger) int {
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return n
		}
		n++
		if log != nil {
			log.Debug("reaped", "pid", pid, "status", ws.ExitStatus())
		}
	}
}

// Reboot syncs file systems and restarts, powers off or halts the machine.
// It only returns on failure.
func Reboot(cmd RebootCmd) error {
	unix.Sync()
	remountReadOnly()
	// The magic numbers are 32-bit patterns: HALT does not fit a 32-bit
	// int as a positive value, so it is passed as the kernel reads it.
	var how uint32 = unix.LINUX_REBOOT_CMD_RESTART
	switch cmd {
	case PowerOff:
		how = unix.LINUX_REBOOT_CMD_POWER_OFF
	case Halt:
		how = unix.LINUX_REBOOT_CMD_HALT
	}
	if err := unix.Reboot(int(int32(how))); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// KernelRelease returns uname -r.
func KernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// diskFS are the file system types remountReadOnly settles before a
// reboot: the ones on block devices.
var diskFS = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "vfat": true, "btrfs": true, "xfs": true, "f2fs": true}

// mountsUnescape undoes /proc/self/mounts' octal escapes of mount points.
var mountsUnescape = strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)

// remountReadOnly remounts the disk file systems read-only, innermost
// first, as init systems do before a reboot: ext4 then checkpoints its
// journal, so a boot loader that reads the disk without replaying it
// (GRUB) sees the last writes. Busy mounts stay as they are (best effort:
// Sync already made the data durable).
func remountReadOnly() {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		f := strings.Fields(lines[i])
		if len(f) < 3 || !diskFS[f[2]] {
			continue
		}
		_ = unix.Mount("", mountsUnescape.Replace(f[1]), "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
}
