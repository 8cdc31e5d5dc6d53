package rootfs

import (
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
)

// Conf describes a test container's lxc.container.conf; pvrtemplate,
// the one producer of these files, renders it.
type Conf struct {
	// Name is the platform name; it appears in the /volumes/<name>/… paths.
	Name string
	// VolumesDir replaces "/volumes" in the rootfs path ("" keeps /volumes).
	VolumesDir string
	// RootVolume is the root volume file name ("" means root.squashfs).
	RootVolume string
	// Init is lxc.init.cmd ("" means /sbin/init).
	Init string
	// Env adds lxc.environment lines (KEY=value).
	Env []string
	// Mounts adds raw lxc.mount.entry values.
	Mounts []string
	// Extra lines appended verbatim.
	Extra []string
}

// Src is the src.json of c: pvr's builtin template with the fixtures'
// settings (host network and IPC, as pvr's defaults, so containers start
// without any bridge setup; a tmpfs on /tmp; the host's resolv.conf not
// bound, since test hosts may lack one).
func (c Conf) Src() pvrtemplate.Src {
	init := c.Init
	if init == "" {
		init = "/sbin/init"
	}
	extra := []string{"lxc.mount.entry = tmpfs tmp tmpfs rw,nodev,relatime,mode=1777 0 0"}
	for _, m := range c.Mounts {
		extra = append(extra, "lxc.mount.entry = "+m)
	}
	extra = append(extra, c.Extra...)
	return pvrtemplate.Src{Template: pvrtemplate.Builtin,
		Args: map[string]any{
			"LXC_TTY_MAX":            "4",
			"LXC_MOUNT_AUTO_PROC":    "proc:mixed",
			"LXC_MOUNT_AUTO_SYS":     "sys:mixed",
			"LXC_MOUNT_AUTO_GROUP":   "cgroup:mixed",
			"PV_RESOLV_CONF_DISABLE": "yes",
			"PV_LXC_EXTRA_CONF":      strings.Join(extra, "\n"),
		},
		DockerConfig: pvrtemplate.Config{
			Cmd: []string{init},
			Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, c.Env...),
		}}
}

// LXCConf renders c; it panics on a name or value with a line break,
// which only a broken test passes.
func LXCConf(c Conf) string {
	f, err := pvrtemplate.Render(c.Name, c.Src(), pvrtemplate.Options{VolumesDir: c.VolumesDir, RootVolume: c.RootVolume})
	if err != nil {
		panic("rootfs: " + err.Error())
	}
	return string(f.LXCConf)
}
