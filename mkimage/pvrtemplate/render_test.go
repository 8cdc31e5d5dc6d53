package pvrtemplate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestRenderSeed: the seeds' awconnect src.json renders the run.json the
// seeds show (storage of an image volume, boot overlay).
func TestRenderSeed(t *testing.T) {
	var src Src
	seed := `{"#spec": "service-manifest-src@1", "docker_config": {"Cmd": ["/lib/systemd/systemd"],
	"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Hostname": "",
	"Volumes": {"/etc/NetworkManager/system-connections/": {}}, "WorkingDir": "/opt/wifi-connect/"},
	"docker_digest": "registry.gitlab.com/pantacor/pv-platforms/wifi-connect@sha256:b2ad", "docker_name": "registry.gitlab.com/pantacor/pv-platforms/wifi-connect",
	"docker_source": "remote,local", "docker_tag": "arm32v5", "persistence": {}, "template": "builtin-lxc-docker", "dm_enabled": {"root.squashfs": true}}`
	if err := json.Unmarshal([]byte(seed), &src); err != nil {
		t.Fatal(err)
	}
	f, err := Render("awconnect", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var run map[string]any
	json.Unmarshal(f.RunJSON, &run)
	st := run["storage"].(map[string]any)
	if got := st["docker--etc-NetworkManager-system-connections"]; got == nil || got.(map[string]any)["persistence"] != "permanent" {
		t.Errorf("storage = %v, want docker--etc-NetworkManager-system-connections permanent", st)
	}
	if got := st["lxc-overlay"].(map[string]any)["persistence"]; got != "boot" {
		t.Errorf("lxc-overlay persistence = %v, want boot", got)
	}
	for k, want := range map[string]any{"#spec": RunSpec, "config": "lxc.container.conf", "type": "lxc", "root-volume": "root.squashfs", "name": "awconnect"} {
		if run[k] != want {
			t.Errorf("run.json %s = %v, want %v", k, run[k], want)
		}
	}
	conf := string(f.LXCConf)
	for _, l := range []string{
		"lxc.rootfs.path = overlayfs:/volumes/awconnect/root.squashfs:/volumes/awconnect/lxc-overlay/upper\n",
		"lxc.init.cmd = /lib/systemd/systemd\n",
		"lxc.init.cwd = /opt/wifi-connect/\n",
		"lxc.environment = PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
		"lxc.namespace.keep = user net ipc\n",
		"lxc.mount.auto = proc sys:rw cgroup\n",
		"lxc.mount.entry = /volumes/awconnect/docker--etc-NetworkManager-system-connections etc/NetworkManager/system-connections/ none bind,rw,create=dir 0 0\n",
	} {
		if !strings.Contains(conf, l) {
			t.Errorf("lxc.container.conf lacks %q:\n%s", l, conf)
		}
	}
	// Unknown keys survive a round trip.
	b, _ := json.Marshal(src)
	if !strings.Contains(string(b), `"dm_enabled"`) {
		t.Errorf("src.json lost dm_enabled: %s", b)
	}
}

func TestRenderArgs(t *testing.T) {
	src := Src{Template: Builtin, DockerConfig: Config{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, User: "1000:100"},
		Args: map[string]any{"PV_GROUP": "platform", "PV_ROLES": []any{"mgmt"}, "PV_RESTART_POLICY": "container",
			"PV_STATUS_GOAL": "STARTED", "PV_DRIVERS_REQUIRED": []any{"wifi"}, "PV_LXC_EXTRA_CONF": "lxc.a = 1\nlxc.b = 2",
			"PV_SECURITY_WITH_STORAGE": "yes"}}
	f, err := Render("sdk", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Group, RestartPolicy, StatusGoal string
		Roles                            []string
		Drivers                          map[string][]string
	}
	json.Unmarshal(f.RunJSON, &run)
	var raw map[string]any
	json.Unmarshal(f.RunJSON, &raw)
	if raw["group"] != "platform" || raw["restart_policy"] != "container" || raw["status_goal"] != "STARTED" {
		t.Errorf("run.json = %s", f.RunJSON)
	}
	json.Unmarshal(f.RunJSON, &run)
	if len(run.Roles) != 1 || run.Roles[0] != "mgmt" || len(run.Drivers["required"]) != 1 {
		t.Errorf("run.json roles/drivers = %s", f.RunJSON)
	}
	conf := string(f.LXCConf)
	for _, l := range []string{"lxc.init.cmd = /bin/sh \"-c\" \"echo hi\"\n", "lxc.init.uid = 1000\n", "lxc.init.gid = 100\n",
		"lxc.a = 1\nlxc.b = 2\n", "lxc.mount.entry = /storage storage none bind,rw,create=dir 0 0\n"} {
		if !strings.Contains(conf, l) {
			t.Errorf("lxc.container.conf lacks %q:\n%s", l, conf)
		}
	}
	data, err := Render("base", Src{Args: map[string]any{"PV_STATUS_GOAL": "MOUNTED", "PV_GROUP": "data"}}, Options{})
	if err != nil || data.LXCConf != nil || strings.Contains(string(data.RunJSON), "lxc.container.conf") {
		t.Errorf("data container = %s, conf %q, %v; want no LXC configuration", data.RunJSON, data.LXCConf, err)
	}
}

// TestRenderRefusesInjection: an image's config cannot add LXC keys
// (host mounts) through a line break.
func TestRenderRefusesInjection(t *testing.T) {
	inj := "x\nlxc.mount.entry = / host none bind,rw,create=dir 0 0"
	for name, src := range map[string]Src{
		"env":     {DockerConfig: Config{Env: []string{"A=" + inj}}},
		"cmd":     {DockerConfig: Config{Cmd: []string{"/bin/sh", inj}}},
		"cmd0":    {DockerConfig: Config{Cmd: []string{inj}}},
		"workdir": {DockerConfig: Config{WorkingDir: inj}},
		"volume":  {DockerConfig: Config{Volumes: map[string]struct{}{inj: {}}}},
		"arg":     {Args: map[string]any{"PV_GROUP": inj}},
		"list":    {Args: map[string]any{"PV_LXC_EXTRA_ENV": []any{inj}}},
		"quote":   {DockerConfig: Config{Cmd: []string{"/bin/sh", `a" "b`}}},
		"up":      {DockerConfig: Config{Volumes: map[string]struct{}{"/../../etc": {}}}},
		"rel":     {Persistence: map[string]string{"etc": "permanent"}},
	} {
		if _, err := Render("c", src, Options{}); !errors.Is(err, ErrArg) {
			t.Errorf("%s: Render = %v, want %v", name, err, ErrArg)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add(`{"#spec":"service-manifest-src@1","args":{"PV_ROLES":["mgmt"]},"docker_config":{"Cmd":["/bin/sh"]}}`)
	f.Fuzz(func(t *testing.T, s string) {
		var src Src
		if json.Unmarshal([]byte(s), &src) != nil {
			return
		}
		f, err := Render("c", src, Options{})
		if err != nil {
			return
		}
		if !json.Valid(f.RunJSON) {
			t.Fatalf("invalid run.json %s", f.RunJSON)
		}
		for _, l := range strings.Split(string(f.LXCConf), "\n") {
			if strings.HasPrefix(l, "lxc.mount.entry = / host") && src.Args["PV_SECURITY_WITH_HOST"] == nil && src.Args["PV_LXC_EXTRA_CONF"] == nil {
				t.Fatalf("host mount injected: %q", f.LXCConf)
			}
		}
	})
}
