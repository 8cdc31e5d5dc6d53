package xconnect

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// allowDevice lets the consumer process pid open the character device
// rdev (rwm) when its cgroup v1 devices controller would refuse it: a
// container whose config denies devices (lxc.cgroup.devices.deny = a and
// an allow list, as PVR_LXC_CGROUP_DEVICES_WHITE makes). It returns the
// consumer's devices cgroup directory ("" with no v1 devices controller:
// on cgroup2 Pantavisor's LXC config allows every device) and whether it
// granted the device (false when the cgroup allowed it already).
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
