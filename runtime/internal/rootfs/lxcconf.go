package rootfs

import (
	"fmt"
	"strings"
)

// Conf describes a container configuration like the lxc.container.conf files
// pvr generates for Pantavisor platforms.
type Conf struct {
	// Name is the platform name; it appears in the /volumes/<name>/… paths.
	Name string
	// VolumesDir replaces "/volumes" in the rootfs path ("" keeps /volumes).
	VolumesDir string
	// RootVolume is the root volume file name ("" means root.squashfs).
	RootVolume string
	// Overlay is the storage entry holding the writable upper dir
	// ("" means lxc-overlay).
	Overlay string
	// Init is lxc.init.cmd ("" means /sbin/init).
	Init string
	// Env adds lxc.environment lines (KEY=value).
	Env []string
	// Mounts adds raw lxc.mount.entry values.
	Mounts []string
	// Extra lines appended verbatim.
	Extra []string
}

// LXCConf renders c. The result keeps host network and IPC (as pvr's
// defaults do) so containers start without any bridge setup.
func LXCConf(c Conf) string {
	vol := c.VolumesDir
	if vol == "" {
		vol = "/volumes"
	}
	root := c.RootVolume
	if root == "" {
		root = "root.squashfs"
	}
	ovl := c.Overlay
	if ovl == "" {
		ovl = "lxc-overlay"
	}
	init := c.Init
	if init == "" {
		init = "/sbin/init"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lxc.tty.max = 4\n")
	fmt.Fprintf(&b, "lxc.pty.max = 1024\n")
	fmt.Fprintf(&b, "lxc.cgroup.devices.allow = a\n")
	fmt.Fprintf(&b, "lxc.rootfs.path = overlayfs:%s/%s/%s:%s/%s/%s/upper\n", vol, c.Name, root, vol, c.Name, ovl)
	fmt.Fprintf(&b, "lxc.init.cmd = %s\n", init)
	fmt.Fprintf(&b, "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n")
	fmt.Fprintf(&b, "lxc.namespace.keep = user net ipc\n")
	fmt.Fprintf(&b, "lxc.mount.entry = tmpfs run tmpfs rw,nodev,relatime,mode=755 0 0\n")
	fmt.Fprintf(&b, "lxc.mount.entry = tmpfs tmp tmpfs rw,nodev,relatime,mode=1777 0 0\n")
	fmt.Fprintf(&b, "lxc.environment = PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	for _, e := range c.Env {
		fmt.Fprintf(&b, "lxc.environment = %s\n", e)
	}
	for _, m := range c.Mounts {
		fmt.Fprintf(&b, "lxc.mount.entry = %s\n", m)
	}
	for _, l := range c.Extra {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.String()
}
