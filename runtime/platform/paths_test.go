package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

func TestPaths(t *testing.T) {
	dir := t.TempDir()
	hooks := filepath.Join(dir, "hooks")
	os.MkdirAll(hooks, 0o755)
	for _, h := range []string{"a.sh", "export.sh"} {
		os.WriteFile(filepath.Join(hooks, h), nil, 0o755)
	}
	ps := Paths{Storage: "/s", Volumes: "/v", Configs: "/c", Run: "/r", Logs: "/l", RootfsMount: "/u/lib/lxc/rootfs", HooksDir: hooks, ExtraConf: []string{"lxc.tty.max = 1"}, DevLog: "/dev/log"}
	st := mkState(t, map[string]string{
		"app": `"roles":["nobody"],"volumes":["data.squashfs"],"storage":{"lxc-overlay":{"persistence":"boot"},"cache":{"persistence":"permanent"}},"dev-log":true,"exports":["/x"],"network":{"mode":"host","hostname":"apphost"}`,
	}, `"app/data.squashfs":"`+sha+`"`)
	p := st.Platform("app")
	if p == nil {
		t.Fatal("no platform app")
	}
	v := ps.Volume(p, "5", nil)
	if v.Dir != "/s/trails/5/app" || strings.Join(v.Volumes, ",") != "root.squashfs,data.squashfs" || v.ConfigDir != "/s/trails/5/_config/app" || v.Storage["cache"] != "permanent" || v.Storage["lxc-overlay"] != "boot" {
		t.Errorf("Volume() = %+v", v)
	}
	s := ps.LXC(p, "app", "5")
	want := map[string]string{
		"LXCPath": s.LXCPath, "ConfigFile": s.ConfigFile, "LogFile": s.LogFile, "DevLog": s.DevLog, "ConfigOverlay": s.ConfigOverlay, "RootfsMount": s.RootfsMount,
	}
	exp := map[string]string{
		"LXCPath": "/r/lxc", "ConfigFile": "/s/trails/5/app/lxc.container.conf", "LogFile": "/l/5/app/lxc/lxc.log", "DevLog": "/dev/log", "ConfigOverlay": "/c/app", "RootfsMount": "/u/lib/lxc/rootfs",
	}
	for k, v := range exp {
		if want[k] != v {
			t.Errorf("LXC().%s = %q, want %q", k, want[k], v)
		}
	}
	if s.Mgmt || len(s.MountHooks) != 2 || strings.Join(s.Extra, "|") != "lxc.tty.max = 1|lxc.uts.name = apphost" {
		t.Errorf("LXC() = %+v, want nobody role, both hooks, extra conf and hostname", s)
	}
}

func TestVolumeStorageDisks(t *testing.T) {
	ps := Paths{Storage: "/s", Volumes: "/v", Configs: "/c", Run: "/r", MediaDir: "/media"}
	st := mkState(t, map[string]string{
		"app":   `"storage":{"lxc-overlay":{"persistence":"boot"},"keys":{"persistence":"permanent","disk":"secrets"},"cache":{"persistence":"revision","disk":"zvol"}}`,
		"other": `"storage":{"data":{"persistence":"permanent"}}`,
	}, `"device.json":{"disks":[{"name":"secrets","type":"dm-crypt-versatile","path":"/storage/dm-crypt-files/s/versatile.img,2,key"},`+
		`{"name":"zvol","type":"volume-disk","format":"ext4","provision":"zram","provision_ops":"disksize=8M","mount_target":"/zv"},`+
		`{"name":"built-in","type":"directory","path":"/storage/mydisks/","default":"yes"}]}`)
	v := ps.Volume(st.Platform("app"), "5", st.Device())
	want := map[string]volume.DiskDir{
		"keys":        {Name: "secrets", Dir: "/media/pv/dmcrypt/secrets", MountPoint: true},
		"cache":       {Name: "zvol", Dir: "/zv", MountPoint: true},
		"lxc-overlay": {Name: "built-in", Dir: "/storage/mydisks"},
	}
	for k, w := range want {
		if v.StorageDisk[k] != w {
			t.Errorf("StorageDisk[%s] = %+v, want %+v", k, v.StorageDisk[k], w)
		}
	}
	if o := ps.Volume(st.Platform("other"), "5", st.Device()); o.StorageDisk["data"].Name != "built-in" {
		t.Errorf("storage without a disk = %+v, want the default disk", o.StorageDisk)
	}
}

// TestDMManifests: a "dm:" volume's manifest comes from the state's inline
// "<dir>/_dm/<file>.json"; an object of that name is not taken.
func TestDMManifests(t *testing.T) {
	man := `{"data_device":"data.squashfs","hash_device":"data.squashfs.hash","root_hash":"00","type":"dm-verity"}`
	st := mkState(t, map[string]string{
		"app": `"volumes":["dm:data.squashfs","dm:other.squashfs"]`,
	}, `"app/data.squashfs":"`+sha+`","app/data.squashfs.hash":"`+sha+`","app/_dm/data.squashfs.json":`+man+
		`,"app/other.squashfs":"`+sha+`","app/_dm/other.squashfs.json":"`+sha+`"`)
	got := DMManifests(st, st.Platform("app"))
	if len(got) != 1 || string(got["data.squashfs"]) != man {
		t.Errorf("DMManifests() = %q, want only data.squashfs's %s", got, man)
	}
}
