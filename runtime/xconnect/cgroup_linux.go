package xconnect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// allowDevice lets the consumer process pid open the character device
// rdev (rwm) when its cgroup v1 devices controller would refuse it: a
// container whose config denies devices (lxc.cgroup.devices.deny = a and
// an allow list, as PVR_LXC_CGROUP_DEVICES_WHITE makes). It returns the
// consumer's devices cgroup directory ("" with no v1 devices controller:
// see checkOpen for cgroup2) and whether it granted the device (false
// when the cgroup allowed it already).
func (m *Mesh) allowDevice(pid int, rdev uint64) (cg string, granted bool, err error) {
	cg, err = m.devicesCgroup(pid)
	if cg == "" || err != nil {
		return "", false, err
	}
	list, err := os.ReadFile(cg + "/devices.list")
	if err != nil {
		return "", false, err
	}
	if devicePermitted(list, rdev) {
		return cg, false, nil
	}
	if err := writeCgroup(cg+"/devices.allow", deviceRule(rdev)); err != nil {
		return "", false, err
	}
	return cg, true, nil
}

// revokeDevice takes back what allowDevice granted in cg.
func revokeDevice(cg string, rdev uint64) error {
	return writeCgroup(cg+"/devices.deny", deviceRule(rdev))
}

func deviceRule(rdev uint64) string {
	return fmt.Sprintf("c %d:%d rwm", unix.Major(rdev), unix.Minor(rdev))
}

func writeCgroup(file, v string) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// devicesCgroup returns the directory of pid's cgroup in the cgroup v1
// devices hierarchy, "" when none is mounted or pid is in none.
func (m *Mesh) devicesCgroup(pid int) (string, error) {
	mnt, err := m.devicesMount()
	if mnt == "" || err != nil {
		return "", err
	}
	b, err := os.ReadFile(m.procRoot + "/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	// "5:devices:/lxc/app": hierarchy id, controllers, path.
	for line := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "devices") {
			return mnt + f[2], nil
		}
	}
	return "", nil
}

// devicesMount is where the cgroup v1 devices hierarchy is mounted, ""
// when it is not (cgroup2 only).
func (m *Mesh) devicesMount() (string, error) {
	b, err := os.ReadFile(m.procRoot + "/self/mountinfo")
	if err != nil {
		return "", err
	}
	// "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 3 && g[0] == "cgroup" && slices.Contains(strings.Split(g[2], ","), "devices") {
			return f[4], nil
		}
	}
	return "", sc.Err()
}

// devicePermitted reports whether a devices.list allows reading and
// writing the character device rdev ("a *:* rwm", "c 226:* rw", ...).
func devicePermitted(list []byte, rdev uint64) bool {
	match := func(pat string, n uint32) bool { return pat == "*" || pat == strconv.FormatUint(uint64(n), 10) }
	for line := range strings.Lines(string(list)) {
		f := strings.Fields(line)
		if len(f) != 3 || (f[0] != "a" && f[0] != "c") {
			continue
		}
		maj, min, ok := strings.Cut(f[1], ":")
		if ok && match(maj, unix.Major(rdev)) && match(min, unix.Minor(rdev)) && strings.Contains(f[2], "r") && strings.Contains(f[2], "w") {
			return true
		}
	}
	return false
}

type refusal struct {
	pid  int
	rdev uint64
}

// ProbeOpen is the hidden pv-xconnect flag of checkOpen's child.
const ProbeOpen = "probe-open"

const probeTimeout = 5 * time.Second

// checkOpen is the cgroup2 counterpart of allowDevice. There a
// container's device rules are liblxc's BPF program on its cgroup, which
// pv-xconnect can neither read nor add to: a consumer with a device allow
// list must list the node itself (c 226:* rwm). So that a link it did
// not allow fails with a clear error instead of leaving a node that
// cannot be opened, a child of ours started in the consumer's cgroup
// (CLONE_INTO_CGROUP) opens the injected node. Only EPERM counts as a
// refusal: a check that cannot run is logged and the node kept.
func (m *Mesh) checkOpen(pid int, rdev uint64, dir int, base string) error {
	cg, err := m.unifiedCgroup(pid)
	if cg == "" || err != nil {
		return err
	}
	key := refusal{pid, rdev}
	if err, ok := m.refused[key]; ok {
		return err
	}
	cgfd, err := unix.Open(cg, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: cg, Err: err}
	}
	defer unix.Close(cgfd)
	fd, err := unix.Openat(dir, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	node := os.NewFile(uintptr(fd), base)
	defer node.Close()
	// A frozen consumer freezes the child too: it is killed, unchecked.
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe", "pv-xconnect", "-"+ProbeOpen)
	cmd.ExtraFiles = []*os.File{node}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return nil
	case bytes.Contains(out, []byte(unix.EPERM.Error())):
		if len(m.refused) > 64 {
			clear(m.refused)
		}
		m.refused[key] = fmt.Errorf("its cgroup (%s) refuses %s: on cgroup2 the consumer's config must allow it (lxc.cgroup.devices.allow = c %d:* rwm)",
			strings.TrimPrefix(cg, "/sys/fs/cgroup"), deviceRule(rdev), unix.Major(rdev))
		return m.refused[key]
	}
	m.log.Warn("xconnect: drm: cannot check that the consumer may open the node", "pid", pid, "err", err, "out", strings.TrimSpace(string(out)))
	return nil
}

// probeOpen is checkOpen's child: it opens the node it got as fd 3.
func probeOpen() error {
	f, err := os.OpenFile("/proc/self/fd/3", os.O_RDWR|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// unifiedCgroup returns the directory of pid's cgroup2 cgroup ("0::/lxc/x"
// under the cgroup2 mount), "" when no cgroup2 is mounted or pid has none.
func (m *Mesh) unifiedCgroup(pid int) (string, error) {
	b, err := os.ReadFile(m.procRoot + "/self/mountinfo")
	if err != nil {
		return "", err
	}
	mnt := ""
	for line := range strings.Lines(string(b)) {
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" {
			mnt = f[4]
			break
		}
	}
	if mnt == "" {
		return "", nil
	}
	b, err = os.ReadFile(m.procRoot + "/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return mnt + p, nil
		}
	}
	return "", nil
}
