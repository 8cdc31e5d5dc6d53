package volume

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Leaks lists what is still mounted under prefix in this mount namespace and
// every loop device whose backing file lies under prefix. Tests and the
// daemon's stop path use it to prove nothing was left behind.
func Leaks(prefix string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	mounts, err := mountsUnder(f, prefix)
	if err != nil {
		return nil, err
	}
	loops, err := loopsUnder("/sys/block", prefix)
	if err != nil {
		return nil, err
	}
	return append(mounts, loops...), nil
}

// mountsUnder parses mountinfo and returns the mount points under prefix.
func mountsUnder(r io.Reader, prefix string) ([]string, error) {
	prefix = filepath.Clean(prefix)
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == prefix || strings.HasPrefix(mp, prefix+"/") {
			out = append(out, "mount "+mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return out, nil
}

// loopsUnder lists loop devices of sysBlock whose backing file is under prefix.
func loopsUnder(sysBlock, prefix string) ([]string, error) {
	prefix = filepath.Clean(prefix)
	devs, err := filepath.Glob(filepath.Join(sysBlock, "loop*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(devs)
	var out []string
	for _, d := range devs {
		b, err := os.ReadFile(filepath.Join(d, "loop", "backing_file"))
		if err != nil {
			continue // not bound
		}
		bf := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if bf == prefix || strings.HasPrefix(bf, prefix+"/") {
			out = append(out, "loop "+filepath.Base(d)+" "+bf)
		}
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 …) of /proc mount tables.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// OwnLeaks is Leaks without the loop devices another mount namespace
// still has mounted. A process that unshares its mount namespace while
// our volumes are mounted (with private propagation: another container
// runtime, a parallel test in its own namespace) keeps private copies of
// them, and so their loops, until it exits: not ours to clean up.
func OwnLeaks(prefix string) ([]string, error) {
	leaks, err := Leaks(prefix)
	if err != nil {
		return nil, err
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	var out []string
	for _, l := range leaks {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "loop" && heldElsewhere(self, "/dev/"+f[1]) {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// heldElsewhere reports whether a process in a mount namespace other than
// self has dev mounted.
func heldElsewhere(self, dev string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		ns, err := os.Readlink(p + "/ns/mnt")
		if err != nil || ns == self {
			continue
		}
		mi, err := os.ReadFile(p + "/mountinfo")
		if err == nil && strings.Contains(string(mi), " "+dev+" ") {
			return true
		}
	}
	return false
}
