package logserver

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// PlatformFromCgroup returns the platform named by the contents of a
// /proc/<pid>/cgroup file: "pantavisor" for pantavisor's own cgroup, the
// container name for LXC cgroups, "unknown-platform" otherwise.
//
// cgroup v1/hybrid: the ":name=pantavisor:" line, whose empty path means
// pantavisor and whose "lxc/<name>" path names a container. cgroup v2 (the
// "0::" line): "/" or "/.." is pantavisor, "…/lxc/<name>…" or
// "…/lxc.payload.<name>…" a container, a "_pv_" element pantavisor.
func PlatformFromCgroup(data []byte) string {
	var v2 string
	haveV2 := false
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		l := string(bytes.TrimSpace(line))
		if i := strings.Index(l, ":name=pantavisor:"); i >= 0 {
			p := strings.Trim(l[i+len(":name=pantavisor:"):], "/")
			if p == "" || p == "_pv_" {
				return PlatformPantavisor
			}
			p = strings.TrimPrefix(p, "lxc/")
			if name := firstElem(p); name != "" && name != "lxc" {
				return name
			}
			return PlatformUnknown
		}
		if strings.HasPrefix(l, "0::") {
			v2, haveV2 = l[3:], true
		}
	}
	if !haveV2 {
		return PlatformUnknown
	}
	if v2 == "/" || v2 == "" || strings.HasPrefix(v2, "/..") {
		return PlatformPantavisor
	}
	elems := strings.Split(strings.Trim(v2, "/"), "/")
	for i, e := range elems {
		switch {
		case e == "_pv_" || e == PlatformPantavisor && i == 0:
			return PlatformPantavisor
		case e == "lxc" || e == "lxc.payload":
			if i+1 < len(elems) && elems[i+1] != "" {
				return elems[i+1]
			}
		case strings.HasPrefix(e, "lxc.payload."):
			return strings.TrimPrefix(e, "lxc.payload.")
		}
	}
	return PlatformUnknown
}

func firstElem(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// cgroupResolver is the default platform resolver: it reads
// <procDir>/<pid>/cgroup. The pantavisor main PID is always "pantavisor".
func cgroupResolver(procDir string, mainPID int32) func(pid int32) string {
	return func(pid int32) string {
		if pid == mainPID {
			return PlatformPantavisor
		}
		data, err := os.ReadFile(procDir + "/" + strconv.Itoa(int(pid)) + "/cgroup")
		if err != nil {
			return PlatformUnknown
		}
		return PlatformFromCgroup(data)
	}
}
