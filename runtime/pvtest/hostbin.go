package pvtest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
)

// xcBusConfig is the xc-dbus fixture's bus: anyone may connect and call,
// only user operator may own org.pantavisor.Example.
const xcBusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <policy user="operator">
    <allow own="org.pantavisor.Example"/>
  </policy>
</busconfig>
`

// hostBinaries returns the host's (Debian's) programs at paths with the
// libraries and loader the ELF walker finds for them (mkimage/initrd, the
// host as sysroot), as rootfs files: symbolic links on the way (merged
// /usr: /lib -> usr/lib) as links, shallowest first, then the files at
// their real paths.
func hostBinaries(paths ...string) ([]rootfs.File, error) {
	sys := initrd.Sysroot{Dir: "/"}
	libs, err := sys.Needed(paths)
	if err != nil {
		return nil, err
	}
	links := map[string]string{}
	var real []string
	for _, p := range append(paths, libs...) {
		r, ls, err := sys.Resolve(p)
		if err != nil {
			return nil, err
		}
		for l, t := range ls {
			links[l] = t
		}
		real = append(real, r)
	}
	var files []rootfs.File
	names := make([]string, 0, len(links))
	for l := range links {
		names = append(names, l)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		return di < dj || di == dj && names[i] < names[j]
	})
	for _, l := range names {
		files = append(files, rootfs.File{Path: l, Link: links[l]})
	}
	sort.Strings(real)
	for _, r := range real {
		data, err := os.ReadFile(filepath.Join(sys.Dir, r))
		if err != nil {
			return nil, err
		}
		files = append(files, rootfs.File{Path: r, Mode: 0o755, Data: data})
	}
	return files, nil
}
