package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPaths(t *testing.T) {
	dir := t.TempDir()
	hooks := filepath.Join(dir, "hooks")
	os.MkdirAll(hooks, 0o755)
	for _, h := range []string{"a.sh", "export.sh"} {
		os.WriteFile(filepath.Join(hooks, h), nil, 0o755)
	}
	ps := Paths{Storage: "/s", Volumes: "/v", Configs: "/c", Run: "/r", Logs: "/l", HooksDir: hooks, ExtraConf: []string{"lxc.tty.max = 1"}, DevLog: "/dev/log"}
	st := mkState(t, map[string]string{
		"app": `"roles":["nobody"],"volumes":["data.squashfs"],"storage":{"lxc-overlay":{"persistence":"boot"},"cache":{"persistence":"permanent"}},"dev-log":true,"exports":["/x"],"network":{"mode":"host","hostname":"apphost"}`,
	}, `"app/data.squashfs":"`+sha+`"`)
	p := st.Platform("app")
	if p == nil {
		t.Fatal("no platform app")
	}
	v := ps.Volume(p, "5")
	if v.Dir != "/s/trails/5/app" || strings.Join(v.Volumes, ",") != "root.squashfs,data.squashfs" || v.ConfigDir != "/s/trails/5/_config/app" || v.Storage["cache"] != "permanent" || v.Storage["lxc-overlay"] != "boot" {
		t.Errorf("Volume() = %+v", v)
	}
	s := ps.LXC(p, "app", "5")
	want := map[string]string{
		"LXCPath": s.LXCPath, "ConfigFile": s.ConfigFile, "LogFile": s.LogFile, "DevLog": s.DevLog, "ConfigOverlay": s.ConfigOverlay,
	}
	exp := map[string]string{
		"LXCPath": "/r/lxc", "ConfigFile": "/s/trails/5/app/lxc.container.conf", "LogFile": "/l/5/app/lxc/lxc.log", "DevLog": "/dev/log", "ConfigOverlay": "/c/app",
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
