//go:build linux

package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// ReapGrace is how long an exited child is left to whoever started it.
// os/exec, the daemons and the LXC adapter wait for their own children
// (through a pidfd): a reaper taking one first steals its exit status
// ("waitid: no child processes"). The orphans PID 1 inherits are only
// collected once they have been zombies this long.
const ReapGrace = 2 * time.Second

// Reap collects every child (PID 1 inherits all orphans) that stays a
// zombie for ReapGrace, until ctx ends.
func Reap(ctx context.Context, log *slog.Logger) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	r := NewReaper(ReapGrace)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if _, next := r.Once(log, time.Now()); next > 0 {
			t.Reset(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
			// a burst of exits is looked at once
			time.Sleep(100 * time.Millisecond)
		case <-t.C:
		}
	}
}

// Reaper collects the zombie children nobody waited for within its grace.
// One goroutine owns it.
type Reaper struct {
	grace time.Duration
	seen  map[int]time.Time // zombie children: when first seen
}

// NewReaper returns a Reaper leaving exited children to their owners for
// grace.
func NewReaper(grace time.Duration) *Reaper {
	return &Reaper{grace: grace, seen: map[int]time.Time{}}
}

// Once reaps the children that have been zombies for the grace period
// and returns how many, and when to look again for the younger ones (0:
// none left).
func (r *Reaper) Once(log *slog.Logger, now time.Time) (n int, next time.Duration) {
	// Peek first (WNOWAIT leaves the child alone): most wake-ups find the
	// exit already waited for, and /proc need not be read.
	var si unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil || si.Signo == 0 {
		clear(r.seen)
		return 0, 0
	}
	zombies := zombieChildren(os.Getpid())
	for pid := range r.seen {
		if !zombies[pid] {
			delete(r.seen, pid) // its owner waited for it
		}
	}
	for pid := range zombies {
		first, ok := r.seen[pid]
		if !ok {
			r.seen[pid], first = now, now
		}
		if age := now.Sub(first); age < r.grace {
			if left := r.grace - age; next == 0 || left < next {
				next = left
			}
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid && err == nil {
			n++
			delete(r.seen, pid)
			if log != nil {
				log.Debug("reaped", "pid", pid, "status", ws.ExitStatus())
			}
		}
	}
	return n, next
}

// zombieChildren lists the zombies whose parent is ppid, from /proc.
func zombieChildren(ppid int) map[int]bool {
	out := map[int]bool{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) >= 2 && f[0] == "Z" && f[1] == strconv.Itoa(ppid) {
			out[pid] = true
		}
	}
	return out
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
