package pvtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// IsolateAttr makes a child process start in a new mount namespace (the
// child still has to call Isolate to stop mount propagation), and in a new
// network namespace too when netns is set (Setup.NetNS).
func IsolateAttr(netns bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if netns {
		a.Cloneflags |= syscall.CLONE_NEWNET
	}
	return a
}

// isolateNet prepares a new network namespace for an instance under dir:
// lo up, and dir/resolv.conf (empty) bound on /etc/resolv.conf, which a
// network container writes to.
func isolateNet(dir string) error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("netns: ip link set lo up: %w: %s", err, out)
	}
	rc := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		return err
	}
	if err := unix.Mount(rc, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("netns: bind %s on /etc/resolv.conf: %w", rc, err)
	}
	return nil
}

// Isolate prepares the calling process (started with IsolateAttr) to host
// an instance: mounts become private to its namespace, and it becomes the
// child subreaper so that every process the instance leaves behind is
// reparented to it and can be found and killed by Cleanup.
func Isolate() error {
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	return nil
}

// liveChildren maps each pid to its live (not zombie) children, from /proc.
func liveChildren() map[int][]int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	return children
}

// Descendants lists the live descendants of pid.
func Descendants(pid int) []int {
	children := liveChildren()
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	sort.Ints(out)
	return out
}

// Cleanup removes what an instance under dir left behind: it kills every
// descendant of this process, reaps them, unmounts everything mounted under
// dir (and the shared paths listed in extraMounts), detaches loop devices
// backed by files under dir and deletes dir. It reports what it had to do.
func Cleanup(dir string, keep bool) []string {
	var notes []string
	own := cgroupPaths(os.Getpid())
	groups := map[string]bool{}
	for round := 0; round < 10; round++ {
		pids := Descendants(os.Getpid())
		for _, p := range pids {
			for g := range cgroupPaths(p) {
				if !own[g] {
					groups[g] = true
				}
			}
		}
		if len(pids) == 0 {
			break
		}
		if round == 0 {
			notes = append(notes, fmt.Sprintf("killed %d leftover processes", len(pids)))
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		reap(200 * time.Millisecond)
	}
	reap(0)
	if n := removeCgroups(groups); n > 0 {
		notes = append(notes, fmt.Sprintf("removed %d leftover cgroups", n))
	}
	if n := unmountUnder(dir); n > 0 {
		notes = append(notes, fmt.Sprintf("unmounted %d mounts", n))
	}
	if n := detachLoops(dir); n > 0 {
		notes = append(notes, fmt.Sprintf("detached %d loop devices", n))
	}
	if !keep {
		if err := os.RemoveAll(dir); err != nil {
			notes = append(notes, "remove instance dir: "+err.Error())
		}
	}
	return notes
}

// reap collects exited children for up to d.
func reap(d time.Duration) {
	end := time.Now().Add(d)
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid > 0 {
			continue
		}
		if err != nil || time.Now().After(end) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) int {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 5 {
			continue
		}
		mp := unescapeMount(fl[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	n := 0
	for _, mp := range mps {
		if unix.Unmount(mp, unix.MNT_DETACH) == nil {
			n++
		}
	}
	return n
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// detachLoops detaches loop devices whose backing file lies under dir.
func detachLoops(dir string) int {
	devs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	n := 0
	for _, bf := range devs {
		b, err := os.ReadFile(bf)
		if err != nil {
			continue
		}
		back := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if back != dir && !strings.HasPrefix(back, dir+"/") {
			continue
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(bf)))
		fd, err := unix.Open("/dev/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0) == nil {
			n++
		}
		unix.Close(fd)
	}
	return n
}

// Children lists the live direct children of pid.
func Children(pid int) []int {
	out := liveChildren()[pid]
	sort.Ints(out)
	return out
}

// cgroupPaths returns the cgroup paths (all hierarchies) of pid.
func cgroupPaths(pid int) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && f[2] != "/" && f[2] != "" && !strings.Contains(f[2], "..") {
			out[f[2]] = true
		}
	}
	return out
}

// removeCgroups removes the cgroup directories the killed processes lived
// in (SIGKILLed LXC monitors leave them behind, and a leftover
// lxc.monitor/<name> makes the next container of that name fail), deepest
// first, in every hierarchy. Busy or shared ones stay.
func removeCgroups(groups map[string]bool) int {
	var dirs []string
	for g := range groups {
		for _, base := range append([]string{"/sys/fs/cgroup"}, globDirs("/sys/fs/cgroup/*")...) {
			d := filepath.Join(base, g)
			if st, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil && st.Mode().IsRegular() {
				dirs = append(dirs, d)
			}
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	n := 0
	for _, d := range dirs {
		// Child cgroups LXC made inside (payload, init) go first.
		subs := globDirs(filepath.Join(d, "*"))
		sort.Slice(subs, func(i, j int) bool { return len(subs[i]) > len(subs[j]) })
		for _, s := range subs {
			unix.Rmdir(s)
		}
		if unix.Rmdir(d) == nil {
			n++
		}
	}
	return n
}

func globDirs(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	var out []string
	for _, p := range m {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			out = append(out, p)
		}
	}
	return out
}
