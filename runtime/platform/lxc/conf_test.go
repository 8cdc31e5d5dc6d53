package lxc

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	tests := []struct {
		in   string
		want []Item
		err  string
	}{
		{"# c\n\nlxc.tty.max = 4\n  lxc.init.cmd=/sbin/init -x  \n", []Item{{"lxc.tty.max", "4"}, {"lxc.init.cmd", "/sbin/init -x"}}, ""},
		{"lxc.mount.entry = a b none bind=x 0 0\n", []Item{{"lxc.mount.entry", "a b none bind=x 0 0"}}, ""},
		{"lxc.tty.max 4\n", nil, "line 1: \"lxc.tty.max 4\" is not key = value"},
		{"\nfoo = 1\n", nil, `line 2: bad key "foo"`},
		{"lxc.a b = 1\n", nil, `bad key "lxc.a b"`},
		{"lxc.unknown = 1\n", nil, `unsupported key "lxc.unknown"`},
		{"lxc.tty.max = a\x00b\n", nil, "NUL in value"},
	}
	known := func(k string) bool { return k != "lxc.unknown" }
	for _, tc := range tests {
		got, err := ParseConf([]byte(tc.in), known)
		if tc.err != "" {
			if !errors.Is(err, ErrBadConf) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseConf(%q) error = %v, want ErrBadConf with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParseConf(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseConf(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func values(items []Item, key string) []string {
	var out []string
	for _, it := range items {
		if it.Key == key {
			out = append(out, it.Value)
		}
	}
	return out
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "configs", "app")
	os.MkdirAll(cfg, 0o755)
	own := []Item{
		{"lxc.rootfs.path", "overlayfs:/volumes/app/root.squashfs:/volumes/app/lxc-overlay/upper"},
		{"lxc.cgroup.devices.allow", "a"},
		{"lxc.mount.entry", "/volumes/app/docker--data data none bind,rw,create=dir 0 0"},
		{"lxc.mount.entry", "/volumesx/keep keep none bind 0 0"},
		{"lxc.cgroup.dir", "x"},
	}
	spec := Spec{Name: "app", Group: "app", VolumesDir: "/v", ConfigOverlay: cfg, RunDir: "/run/pv", Rev: "7", LogLevel: "INFO", DevLog: "/run/log.sock", AutoModFw: true, KernelRelease: "6.1.0", Init: "/bin/app -x", MountHooks: []string{"/lib/pv/hooks_lxc-mount.d/a.sh"}, CgroupRelative: true, NoAutodev: true, Extra: []string{"lxc.tty.dir = lxc"}}
	items, upper, err := Render(spec, own, true)
	if err != nil {
		t.Fatalf("Render() error = %v", err)
	}
	if want := "/v/app/lxc-overlay/upper"; upper != want {
		t.Errorf("Render() upper = %q, want %q", upper, want)
	}
	checks := []struct {
		key  string
		want []string
	}{
		{"lxc.rootfs.path", []string{"overlayfs:" + cfg + ":/v/app/root.squashfs:/v/app/lxc-overlay/upper"}},
		{"lxc.uts.name", []string{"app"}},
		{"lxc.init.cmd", []string{"/bin/app -x"}},
		{"lxc.hook.mount", []string{"/lib/pv/hooks_lxc-mount.d/a.sh"}},
		{"lxc.cgroup.relative", []string{"1"}},
		{"lxc.autodev", []string{"0"}},
		{"lxc.log.level", []string{"INFO"}},
		{"lxc.cgroup.devices.allow", nil},
		{"lxc.cgroup2.devices.allow", []string{"a"}},
		{"lxc.cgroup.dir", nil},
		{"lxc.cgroup.dir.container", []string{"lxc/app"}},
		{"lxc.cgroup.dir.monitor", []string{"lxc.monitor/app"}},
		{"lxc.environment", []string{"container=pv-app"}},
		{"lxc.tty.dir", []string{"lxc"}},
		{"lxc.mount.entry", []string{
			"/v/app/docker--data data none bind,rw,create=dir 0 0",
			"/volumesx/keep keep none bind 0 0",
			"/run/pv/pv-ctrl-log pantavisor/pv-ctrl-log none bind,rw,create=file,optional 0 0",
			"/run/pv/pv-ctrl pantavisor/pv-ctrl none bind,rw,create=file,optional 0 0",
			"/run/pv/logs/7/app pantavisor/logs none bind,ro,create=dir 0 0",
			"/run/pv/user-meta.app pantavisor/user-meta none bind,ro,create=dir 0 0",
			"/run/pv/device-meta.app pantavisor/device-meta none bind,ro,create=dir 0 0",
			"/run/log.sock dev/log none bind,create=file,optional 0 0",
			"/lib/firmware lib/firmware none bind,ro,create=dir,optional 0 0",
			"/lib/modules/6.1.0 lib/modules/6.1.0 none bind,ro,create=dir,optional 0 0",
		}},
	}
	for _, c := range checks {
		if got := values(items, c.key); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Render() %s = %q, want %q", c.key, got, c.want)
		}
	}
	spec.CgroupName = "app-2"
	items, _, _ = Render(spec, own, true)
	if got := values(items, "lxc.cgroup.dir.container"); len(got) != 1 || got[0] != "lxc/app-2" {
		t.Errorf("Render(CgroupName) container dir = %q, want lxc/app-2", got)
	}
	// mgmt role, hybrid cgroups, no config overlay directory.
	spec = Spec{Name: "m", Mgmt: true, RunDir: "/r", ConfigOverlay: filepath.Join(dir, "none")}
	items, _, err = Render(spec, own[:2], false)
	if err != nil {
		t.Fatalf("Render(mgmt) error = %v", err)
	}
	wantMounts := []string{
		"/r pantavisor none bind,ro,create=dir 0 0",
		"/r/logs pantavisor/logs none bind,ro,create=dir 0 0",
		"/r/user-meta pantavisor/user-meta none bind,ro,create=dir 0 0",
		"/r/device-meta pantavisor/device-meta none bind,ro,create=dir 0 0",
	}
	if got := values(items, "lxc.mount.entry"); strings.Join(got, "|") != strings.Join(wantMounts, "|") {
		t.Errorf("Render(mgmt) mounts = %q, want %q", got, wantMounts)
	}
	// The log tree, when given, is what /pantavisor/logs shows.
	spec.LogDir = "/storage/logs"
	items, _, _ = Render(spec, own[:2], false)
	if got := values(items, "lxc.mount.entry"); len(got) < 2 || got[1] != "/storage/logs pantavisor/logs none bind,ro,create=dir 0 0" {
		t.Errorf("Render(mgmt, LogDir) mounts = %q, want /storage/logs on pantavisor/logs", got)
	}
	spec.LogDir = ""
	if got := values(items, "lxc.cgroup.devices.allow"); len(got) != 1 {
		t.Errorf("Render(hybrid) lxc.cgroup.devices.allow = %q, want kept", got)
	}
	if got := values(items, "lxc.rootfs.path"); got[0] != own[0].Value {
		t.Errorf("Render(no overlay dir) rootfs = %q, want unchanged", got)
	}
	if got := values(items, "lxc.environment"); got[0] != "container=pv-platform" {
		t.Errorf("Render(no group) env = %q, want container=pv-platform", got)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		own  []Item
		want string
	}{
		{nil, "lxc.rootfs.path: missing"},
		{[]Item{{"lxc.rootfs.path", "overlayfs:/only"}}, "want overlayfs:<lower>:<upper>"},
		{[]Item{{"lxc.rootfs.path", "overlay:/a:"}}, "want overlay:<lower>:<upper>"},
	}
	for _, tc := range tests {
		_, _, err := Render(Spec{Name: "x"}, tc.own, false)
		if !errors.Is(err, ErrBadConf) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Render(%v) error = %v, want %q", tc.own, err, tc.want)
		}
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add([]byte("lxc.tty.max = 4\n# x\nlxc.rootfs.path = overlayfs:/volumes/a/root.squashfs:/volumes/a/o/upper\n"))
	f.Add([]byte("lxc.a=\n=\n\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseConf(data, nil)
		if err != nil {
			return
		}
		// What parses must survive a format/parse round trip.
		again, err := ParseConf(FormatConf(items), nil)
		if err != nil || len(again) != len(items) {
			t.Fatalf("round trip of %q = %v, %v", data, again, err)
		}
		for i := range items {
			if again[i] != items[i] {
				t.Errorf("round trip [%d] = %v, want %v", i, again[i], items[i])
			}
		}
		_, _, _ = Render(Spec{Name: "f", VolumesDir: "/v", RunDir: "/r", Net: &Net{Bridge: "b"}}, items, true)
	})
}

func TestRenderNet(t *testing.T) {
	own := []Item{
		{"lxc.rootfs.path", "dir:/r"},
		{"lxc.namespace.keep", "user net ipc"},
		{"lxc.net.0.type", "empty"},
	}
	spec := Spec{Name: "n", Net: &Net{Bridge: "pvbr0", Address: netip.MustParsePrefix("10.0.3.5/24"), Gateway: netip.MustParseAddr("10.0.3.1"), MAC: "02:00:00:00:00:05"}}
	items, _, err := Render(spec, own, false)
	if err != nil {
		t.Fatalf("Render() error = %v", err)
	}
	checks := map[string]string{
		"lxc.namespace.keep":     "user ipc",
		"lxc.net.1.type":         "veth",
		"lxc.net.1.link":         "pvbr0",
		"lxc.net.1.name":         "eth0",
		"lxc.net.1.flags":        "up",
		"lxc.net.1.ipv4.address": "10.0.3.5/24",
		"lxc.net.1.ipv4.gateway": "10.0.3.1",
		"lxc.net.1.hwaddr":       "02:00:00:00:00:05",
	}
	for k, want := range checks {
		if got := values(items, k); len(got) != 1 || got[0] != want {
			t.Errorf("Render(net) %s = %q, want %q", k, got, want)
		}
	}
	items, _, _ = Render(Spec{Name: "n", Net: &Net{Bridge: "b"}}, []Item{{"lxc.rootfs.path", "dir:/r"}, {"lxc.namespace.keep", "net"}}, false)
	if got := values(items, "lxc.namespace.keep"); len(got) != 0 {
		t.Errorf("Render(net) keep = %q, want the key dropped", got)
	}
	if got := values(items, "lxc.net.0.link"); len(got) != 1 || got[0] != "b" {
		t.Errorf("Render(net) lxc.net.0.link = %q, want b", got)
	}
}

// On pure cgroup2 a container's device rules are enforced by liblxc's BPF
// program: they must reach it as lxc.cgroup2.devices.*, in order, not be
// replaced by "allow a".
func TestRenderDevicesV2(t *testing.T) {
	root := Item{"lxc.rootfs.path", "/r"}
	tests := []struct {
		name  string
		rules []Item
		extra []string
		want  []string // lxc.cgroup2.devices.* as "kind value"
	}{
		{"none", nil, nil, []string{"allow a"}},
		{"upstream default", []Item{{"lxc.cgroup.devices.allow", "a"}}, nil, []string{"allow a"}},
		{"allow list", []Item{
			{"lxc.cgroup.devices.deny", "a"},
			{"lxc.cgroup.devices.allow", "c 1:3 rwm"},
			{"lxc.cgroup2.devices.allow", "c 226:* rwm"},
		}, nil, []string{"deny a", "allow c 1:3 rwm", "allow c 226:* rwm"}},
		{"deny only", []Item{{"lxc.cgroup.devices.deny", "b 8:* rwm"}}, nil, []string{"allow a", "deny b 8:* rwm"}},
		{"cleared", []Item{{"lxc.cgroup.devices.deny", "a"}, {"lxc.cgroup.devices.allow", ""}}, nil, []string{"allow a"}},
		{"extra", []Item{{"lxc.cgroup.devices.deny", "a"}}, []string{"lxc.cgroup.devices.allow = c 5:1 rwm"}, []string{"deny a", "allow c 5:1 rwm"}},
	}
	for _, tc := range tests {
		own := append([]Item{root}, tc.rules...)
		items, _, err := Render(Spec{Name: "x", Extra: tc.extra}, own, true)
		if err != nil {
			t.Fatalf("%s: Render() error = %v", tc.name, err)
		}
		var got []string
		for _, it := range items {
			if strings.HasPrefix(it.Key, "lxc.cgroup.devices.") {
				t.Errorf("%s: Render() kept v1 rule %v on cgroup2", tc.name, it)
			}
			if k, ok := strings.CutPrefix(it.Key, "lxc.cgroup2.devices."); ok {
				got = append(got, k+" "+it.Value)
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: Render() cgroup2 devices = %q, want %q", tc.name, got, tc.want)
		}
		// Hybrid hosts keep the v1 rules as written.
		items, _, _ = Render(Spec{Name: "x", Extra: tc.extra}, own, false)
		if got := values(items, "lxc.cgroup2.devices.allow"); len(got) != len(values(own, "lxc.cgroup2.devices.allow")) {
			t.Errorf("%s: Render(hybrid) cgroup2 allow = %q, want only the config's", tc.name, got)
		}
	}
}
