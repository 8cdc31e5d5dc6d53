package state

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Shas used by the fixtures.
const (
	sha1 = "1111111111111111111111111111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222222222222222222222222222"
	sha3 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// protected is the base64url protected header of the fixture signature.
var protected = base64.RawURLEncoding.EncodeToString([]byte(
	`{"alg":"RS256","typ":"PVS","x5c":["MIIB"],"pvs":{"include":["app/**","_config/app/**"],"exclude":["app/src.json"]}}`))

// fullState is a realistic state touching every document kind, written
// the way a person would (indented, unsorted).
var fullState = `{
  "#spec": "pantavisor-service-system@1",
  "README.md": "` + sha3 + `",
  "bsp/run.json": {
    "linux": "kernel.img", "initrd": "pantavisor", "fdt": "board.dtb",
    "modules": "modules.squashfs", "modules_6.1.0-pv": "modules-6.1.squashfs",
    "firmware": "firmware.squashfs", "addons": ["pvws.cpio.xz4"],
    "initrd_config": "ignored", "future_key": {"x": 1}
  },
  "bsp/kernel.img": "` + sha1 + `",
  "bsp/pantavisor": "` + sha1 + `",
  "bsp/board.dtb": "` + sha1 + `",
  "bsp/modules.squashfs": "` + sha1 + `",
  "bsp/modules-6.1.squashfs": "` + sha1 + `",
  "bsp/firmware.squashfs": "` + sha1 + `",
  "bsp/pvws.cpio.xz4": "` + sha1 + `",
  "bsp/src.json": {"#spec": "bsp-manifest-src@1", "pvr": "https://example.com/x"},
  "bsp/build.json": {"commit": "abc", "time": 1.5},
  "bsp/drivers.json": {
    "#spec": "driver-aliases@1",
    "all": {"wifi": ["cfg80211", "brcmfmac ${user-meta:wifi.opts}"]},
    "dtb:rpi4": {"bt": ["hci_uart"]}
  },
  "device.json": {
    "disks": [
      {"name": "crypt", "type": "dm-crypt-versatile", "path": "/storage/x.img,2,key", "aliases": ["secure"]},
      {"name": "zram", "type": "volume-disk", "format": "ext4", "provision": "zram", "mount_target": "/z", "default": "yes"}
    ],
    "disks_v3": [
      {"name": "future", "type": "quantum-disk"}
    ],
    "groups": [
      {"name": "data", "status_goal": "MOUNTED", "restart_policy": "system", "timeout": 30},
      {"name": "root", "restart_policy": "system"},
      {"name": "app", "description": "apps", "timeout": 60,
       "auto_recovery": {"policy": "on-failure", "max_retries": 5, "retry_delay": 5, "backoff_factor": 2.0, "stable_timeout": 30, "backoff_policy": "10min"}}
    ],
    "volumes": {"pv--devmeta": {"disk": "crypt", "persistence": "permanent"}},
    "network": {"pools": {"internal": {"type": "bridge", "bridge": "pvbr0", "subnet": "10.0.3.0/24", "gateway": "10.0.3.1", "nat": true}}}
  },
  "groups.json": [{"name": "ignored-because-device-json"}],
  "os/run.json": {
    "#spec": "service-manifest-run@1",
    "name": "os", "type": "lxc", "config": "lxc.container.conf",
    "root-volume": "root.squashfs", "volumes": ["dm:extra.squashfs"],
    "group": "root", "status_goal": "STARTED", "restart_policy": "system",
    "storage": {"docker--etc": {"persistence": "permanent", "disk": "secure"}, "lxc-overlay": {"persistence": "boot"}},
    "logs": [{"file": "/var/log/messages", "maxsize": 102400, "truncate": true}],
    "drivers": {"required": ["wifi"], "optional": ["bt"], "manual": []},
    "exports": ["a"], "dev-log": true, "automodfw": "no", "share": ["NETWORK"],
    "network": {"mode": "pool", "pool": "internal", "hostname": "os", "ip": "10.0.3.5", "mac": "02:00:0a:00:03:05", "interfaces": []},
    "exec": "/sbin/init", "unknown-future": 1
  },
  "os/lxc.container.conf": "` + sha2 + `",
  "os/root.squashfs": "` + sha2 + `",
  "os/extra.squashfs": "` + sha2 + `",
  "os/services.json": {"#spec": "service-manifest-xconnect@1", "services": [{"name": "system-bus", "type": "dbus", "socket": "/run/dbus/system_bus_socket"}]},
  "app/run.json": {
    "name": "my-app", "config": "lxc.container.conf", "root-volume": "root.squashfs",
    "group": "app", "status_goal": "READY", "roles": ["nobody"],
    "auto_recovery": {"policy": "always", "max_retries": 3, "retry_delay": 2.5, "reset_window": 120, "backoff_policy": "never"},
    "services": {"required": [{"name": "system-bus", "type": "dbus", "interface": "org.example", "target": "/run/dbus/sock", "role": "any"}], "optional": []},
    "runlevel": "app"
  },
  "app/lxc.container.conf": "` + sha2 + `",
  "app/root.squashfs": "` + sha2 + `",
  "app/src.json": {"#spec": "service-manifest-src@1", "docker_name": "x"},
  "app/config.json": {"inline": ["doc", 1.25]},
  "_config/my-app/etc/app.conf": "` + sha3 + `",
  "_sigs/app.json": {"#spec": "pvs@2", "protected": "` + protected + `", "signature": "c2ln"}
}`

func mustParse(t testing.TB, in string) *State {
	t.Helper()
	s, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	return s
}

func TestParseFullState(t *testing.T) {
	s := mustParse(t, fullState)

	if got, want := len(s.Keys()), strings.Count(fullState, "\n  \"")-1; got != want {
		t.Errorf("len(Keys()) = %d, want %d", got, want)
	}
	if !slices.IsSorted(s.Keys()) || slices.Contains(s.Keys(), "#spec") {
		t.Errorf("Keys() = %v, want sorted without #spec", s.Keys())
	}
	if sha, ok := s.Object("os/root.squashfs"); !ok || sha != sha2 {
		t.Errorf("Object(os/root.squashfs) = %q, %v, want %q, true", sha, ok, sha2)
	}
	if _, ok := s.Object("app/run.json"); ok {
		t.Errorf("Object(app/run.json) ok = true, want false")
	}
	if got, want := len(s.Objects()), 14; got != want {
		t.Errorf("len(Objects()) = %d, want %d", got, want)
	}
	if raw, ok := s.Raw("app/config.json"); !ok || string(raw) != `{"inline":["doc",1.25E0]}` {
		t.Errorf("Raw(app/config.json) = %s, %v, want canonical bytes", raw, ok)
	}
	if _, ok := s.Inline()["app/config.json"]; !ok || len(s.Inline())+len(s.Objects()) != len(s.Keys()) {
		t.Errorf("Inline() = %d entries, Objects() = %d, Keys() = %d: want a partition", len(s.Inline()), len(s.Objects()), len(s.Keys()))
	}

	// BSP.
	wantBSP := &BSP{Linux: "kernel.img", Initrd: "pantavisor", Fdt: "board.dtb", Modules: "modules.squashfs",
		Firmware: "firmware.squashfs", Addons: []string{"pvws.cpio.xz4"},
		ModulesByRelease: map[string]string{"6.1.0-pv": "modules-6.1.squashfs"}}
	if !reflect.DeepEqual(s.BSP(), wantBSP) {
		t.Errorf("BSP() = %+v, want %+v", s.BSP(), wantBSP)
	}
	if got := s.BSP().ModulesFor("6.1.0-pv"); got != "modules-6.1.squashfs" {
		t.Errorf("ModulesFor(6.1.0-pv) = %q, want modules-6.1.squashfs", got)
	}
	if got := s.BSP().ModulesFor("5.10"); got != "modules.squashfs" {
		t.Errorf("ModulesFor(5.10) = %q, want modules.squashfs", got)
	}

	// Drivers.
	wantDrivers := &Drivers{Sections: map[string]map[string][]string{
		"all":      {"wifi": {"cfg80211", "brcmfmac ${user-meta:wifi.opts}"}},
		"dtb:rpi4": {"bt": {"hci_uart"}},
	}}
	if !reflect.DeepEqual(s.Drivers(), wantDrivers) {
		t.Errorf("Drivers() = %+v, want %+v", s.Drivers(), wantDrivers)
	}

	// Device and groups: device.json wins over groups.json.
	dev := s.Device()
	if dev == nil {
		t.Fatal("Device() = nil")
	}
	if got := len(dev.Disks); got != 2 {
		t.Errorf("len(Disks) = %d, want 2 (disks_v3 unknown type skipped)", got)
	}
	if d := dev.Disk("secure"); d == nil || d.Name != "crypt" {
		t.Errorf("Disk(secure) = %+v, want the crypt disk", d)
	}
	if d := dev.Disk("zram"); d == nil || !d.Default || d.MountTarget != "/z" {
		t.Errorf("Disk(zram) = %+v, want default with mount target", d)
	}
	if got, want := dev.Volumes, map[string]StorageSpec{"pv--devmeta": {Persistence: "permanent", Disk: "crypt"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Volumes = %v, want %v", got, want)
	}
	wantPool := Pool{Name: "internal", Type: "bridge", Bridge: "pvbr0", Subnet: netip.MustParsePrefix("10.0.3.0/24"),
		Gateway: netip.MustParseAddr("10.0.3.1"), NAT: true}
	if got := dev.Pools["internal"]; got != wantPool {
		t.Errorf("Pools[internal] = %+v, want %+v", got, wantPool)
	}
	wantGroups := []Group{
		{Name: "data", StatusGoal: GoalMounted, RestartPolicy: RestartSystem, Timeout: 30 * time.Second},
		{Name: "root", StatusGoal: GoalStarted, RestartPolicy: RestartSystem},
		{Name: "app", Description: "apps", StatusGoal: GoalStarted, RestartPolicy: RestartContainer, Timeout: time.Minute,
			AutoRecovery: &AutoRecovery{Policy: RecoveryOnFailure, MaxRetries: 5, RetryDelay: 5, BackoffFactor: 2,
				StableTimeout: 30 * time.Second, BackoffPolicy: "10min"}},
	}
	if !reflect.DeepEqual(s.Groups(), wantGroups) {
		t.Errorf("Groups() = %+v, want %+v", s.Groups(), wantGroups)
	}
	if w, ok := s.Groups()[2].AutoRecovery.BackoffWait(); !ok || w != 10*time.Minute {
		t.Errorf("BackoffWait() = %v, %v, want 10m, true", w, ok)
	}

	// Platforms, sorted by name.
	var names []string
	for _, p := range s.Platforms() {
		names = append(names, p.Name)
	}
	if want := []string{"my-app", "os"}; !slices.Equal(names, want) {
		t.Errorf("Platforms() names = %v, want %v", names, want)
	}
	devLog := true
	wantOS := &Platform{
		Name: "os", Type: "lxc", Config: "lxc.container.conf", RootVolume: "root.squashfs",
		Group: "root", RestartPolicy: RestartSystem, StatusGoal: GoalStarted,
		Volumes: []string{"dm:extra.squashfs"},
		Storage: map[string]StorageSpec{"docker--etc": {Persistence: "permanent", Disk: "secure"}, "lxc-overlay": {Persistence: "boot"}},
		Logs:    []map[string]string{{"file": "/var/log/messages", "maxsize": "102400", "truncate": "true"}},
		Drivers: DriverRefs{Required: []string{"wifi"}, Optional: []string{"bt"}, Manual: []string{}},
		Exports: true, DevLog: &devLog, AutoModFw: false,
		Network: &Network{Mode: "pool", Pool: "internal", Hostname: "os", IP: "10.0.3.5", MAC: "02:00:0a:00:03:05", Interfaces: json.RawMessage(`[]`)},
		Dir:     "os", Share: json.RawMessage(`["NETWORK"]`), Exec: "/sbin/init",
		Provides: []ServiceExport{{Name: "system-bus", Type: "dbus", Socket: "/run/dbus/system_bus_socket"}},
	}
	if got := s.Platform("os"); !reflect.DeepEqual(got, wantOS) {
		t.Errorf("Platform(os) = %+v\nwant %+v", got, wantOS)
	}
	if s.Platform("os").Mgmt() {
		t.Errorf("Platform(os).Mgmt() = true, want false (no roles key: no privileges)")
	}
	wantApp := &Platform{
		Name: "my-app", Type: "lxc", Config: "lxc.container.conf", RootVolume: "root.squashfs",
		Group: "app", StatusGoal: GoalReady, Runlevel: "app", Roles: []string{"nobody"}, RolesSet: true,
		AutoRecovery: &AutoRecovery{Policy: RecoveryAlways, MaxRetries: 3, RetryDelay: 2.5, BackoffFactor: 1,
			ResetWindow: 2 * time.Minute, BackoffPolicy: BackoffNever},
		Services: &Services{Required: []ServiceRequirement{{Name: "system-bus", Type: "dbus", Role: "any",
			Interface: "org.example", Target: "/run/dbus/sock"}}, Optional: []ServiceRequirement{}},
		AutoModFw: true, Dir: "app",
	}
	if got := s.Platform("my-app"); !reflect.DeepEqual(got, wantApp) {
		t.Errorf("Platform(my-app) = %+v\nwant %+v", got, wantApp)
	}
	if s.Platform("my-app").Mgmt() {
		t.Errorf("Platform(my-app).Mgmt() = true, want false (roles [nobody])")
	}
	if s.Platform("app") != nil {
		t.Errorf("Platform(app) != nil, want nil: platforms are looked up by name, not dir")
	}

	// Ownership maps dirs and _config names to platforms.
	for path, want := range map[string]string{
		"app/root.squashfs":           "my-app",
		"app/run.json":                "my-app",
		"_config/my-app/etc/app.conf": "my-app",
		"_config/os/x":                "os",
		"os/services.json":            "os",
		"bsp/kernel.img":              "",
		"device.json":                 "",
		"_sigs/app.json":              "",
	} {
		got := ""
		if p := s.PlatformOwning(path); p != nil {
			got = p.Name
		}
		if got != want {
			t.Errorf("PlatformOwning(%q) = %q, want %q", path, got, want)
		}
	}

	// Signatures.
	wantSig := &Signature{Key: "_sigs/app.json", Protected: protected, Sig: "c2ln", Header: SigHeader{
		Alg: "RS256", Typ: "PVS", X5C: []string{"MIIB"},
		Include: []string{"app/**", "_config/app/**"}, Exclude: []string{"app/src.json"}}}
	if got := s.Signatures()["_sigs/app.json"]; !reflect.DeepEqual(got, wantSig) {
		t.Errorf("Signatures()[_sigs/app.json] = %+v, want %+v", got, wantSig)
	}
}

func TestLegacyGroupsAndDisks(t *testing.T) {
	s := mustParse(t, `{"#spec":"pantavisor-service-system@1",
		"groups.json":[{"name":"g1","status_goal":"READY","timeout":5}],
		"disks.json":[{"name":"d","type":"directory","path":"/storage/d"}],
		"x/run.json":{"name":"x","group":"g1","storage":{"v":{"persistence":"revision","disk":"d"}}}}`)
	want := []Group{{Name: "g1", StatusGoal: GoalReady, RestartPolicy: RestartContainer, Timeout: 5 * time.Second}}
	if !reflect.DeepEqual(s.Groups(), want) {
		t.Errorf("Groups() = %+v, want %+v", s.Groups(), want)
	}
	if s.Device() == nil || len(s.Device().Disks) != 1 || s.Device().Disks[0].Path != "/storage/d" {
		t.Errorf("Device() = %+v, want the disks.json disk", s.Device())
	}
}

func TestNoGroups(t *testing.T) {
	s := mustParse(t, `{"#spec":"pantavisor-service-system@1","x/run.json":{"name":"x","group":"platform"}}`)
	if s.Groups() != nil || s.Device() != nil || s.BSP() != nil || s.Drivers() != nil {
		t.Errorf("Groups, Device, BSP, Drivers = %v, %v, %v, %v, want all nil", s.Groups(), s.Device(), s.BSP(), s.Drivers())
	}
	if got := s.Platform("x"); got == nil || got.Type != "lxc" || !got.AutoModFw || got.Mgmt() {
		t.Errorf("Platform(x) = %+v, want lxc defaults", got)
	}
	if got := len(DefaultGroups()); got != 4 {
		t.Errorf("len(DefaultGroups()) = %d, want 4", got)
	}
}

func TestRolesObjectForm(t *testing.T) {
	s := mustParse(t, `{"#spec":"pantavisor-service-system@1","x/run.json":{"name":"x","roles":{"mgmt":true}},
		"y/run.json":{"name":"y","roles":["nobody","mgmt"]}}`)
	if p := s.Platform("x"); !p.RolesSet || p.Mgmt() {
		t.Errorf("Platform(x) RolesSet, Mgmt() = %v, %v, want true, false", p.RolesSet, p.Mgmt())
	}
	if p := s.Platform("y"); !p.Mgmt() {
		t.Errorf("Platform(y).Mgmt() = false, want true")
	}
}

func TestNewAndRoundTrip(t *testing.T) {
	n := New()
	if got, want := string(n.Canonical()), `{"#spec":"pantavisor-service-system@1"}`; got != want {
		t.Errorf("New().Canonical() = %s, want %s", got, want)
	}
	if len(n.Keys()) != 0 || len(n.Objects()) != 0 || len(n.Platforms()) != 0 {
		t.Errorf("New() has keys %v, want none", n.Keys())
	}
	s := mustParse(t, fullState)
	again := mustParse(t, string(s.Canonical()))
	if string(again.Canonical()) != string(s.Canonical()) {
		t.Errorf("Canonical round trip changed bytes:\n%s\n%s", s.Canonical(), again.Canonical())
	}
	assertSameState(t, s, again)
	if s.serialize() == nil || string(s.serialize()) != string(s.Canonical()) {
		t.Errorf("serialize() = %s, want Canonical()", s.serialize())
	}
}

func TestCanonicalStateGolden(t *testing.T) {
	in := `{ "z.json": {"b": 1.5, "a": "\u00e9\n"}, "#spec": "pantavisor-service-system@1",
	"a/obj": "` + sha1 + `", "big.json": [12345678901234567890123, 1e2, -0.25] }`
	want := `{"#spec":"pantavisor-service-system@1","a/obj":"` + sha1 + `","big.json":[12345678901234567890123,100,-2.5E-1],"z.json":{"a":"é\n","b":1.5E0}}`
	if got := string(mustParse(t, in).Canonical()); got != want {
		t.Errorf("Canonical() = %s, want %s", got, want)
	}
}

// assertSameState compares the parsed views of two states.
func assertSameState(t *testing.T, a, b *State) {
	t.Helper()
	if !slices.Equal(a.Keys(), b.Keys()) {
		t.Fatalf("Keys differ: %v vs %v", a.Keys(), b.Keys())
	}
	for _, check := range []struct {
		name string
		x, y any
	}{
		{"Objects", a.Objects(), b.Objects()},
		{"Platforms", a.Platforms(), b.Platforms()},
		{"BSP", a.BSP(), b.BSP()},
		{"Groups", a.Groups(), b.Groups()},
		{"Device", a.Device(), b.Device()},
		{"Drivers", a.Drivers(), b.Drivers()},
		{"Signatures", a.Signatures(), b.Signatures()},
	} {
		if !reflect.DeepEqual(check.x, check.y) {
			t.Fatalf("%s differ after round trip:\n%+v\n%+v", check.name, check.x, check.y)
		}
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse([]byte(`{"#spec":"pantavisor-service-system@1","app/run.json":{"name":"a","auto_recovery":{"max_retries":1.5}}}`))
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("Parse error %v (%T), want *Error", err, err)
	}
	if se.Key != "app/run.json" || !errors.Is(err, ErrInvalid) {
		t.Errorf("Error{Key: %q} Is(ErrInvalid) = %v, want app/run.json, true", se.Key, errors.Is(err, ErrInvalid))
	}
	if got, want := err.Error(), "app/run.json: auto_recovery.max_retries: must be a non-negative integer"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestResolve(t *testing.T) {
	s := mustParse(t, fullState)
	os, app := s.Platform("os"), s.Platform("my-app")
	if got := s.Resolve(os); got.Group.Name != "root" || got.StatusGoal != GoalStarted || got.RestartPolicy != RestartSystem || got.AutoRecovery != nil {
		t.Errorf("Resolve(os) = %+v, want root/STARTED/system/no recovery", got)
	}
	got := s.Resolve(app)
	if got.Group.Name != "app" || got.StatusGoal != GoalReady || got.RestartPolicy != RestartContainer || got.AutoRecovery != app.AutoRecovery {
		t.Errorf("Resolve(my-app) = %+v, want app/READY/container/own recovery", got)
	}
	if got := len(s.EffectiveGroups()); got != 3 {
		t.Errorf("len(EffectiveGroups()) = %d, want 3", got)
	}
}

func TestDefaultGroupAssignment(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"first by name goes to root", doc("z/run.json", `{"name":"a"}`, "b/run.json", `{"name":"b"}`, "c/run.json", `{"name":"c"}`),
			map[string]string{"a": "root", "b": "platform", "c": "platform"}},
		{"explicit root wins", doc("a/run.json", `{"name":"a"}`, "b/run.json", `{"name":"b","group":"root"}`),
			map[string]string{"a": "platform", "b": "root"}},
		{"runlevel counts", doc("a/run.json", `{"name":"a"}`, "b/run.json", `{"name":"b","runlevel":"root"}`, "c/run.json", `{"name":"c","runlevel":"app","group":"data"}`),
			map[string]string{"a": "platform", "b": "root", "c": "data"}},
		{"empty device groups mean defaults", doc("device.json", `{"groups":[]}`, "a/run.json", `{"name":"a","group":"app"}`),
			map[string]string{"a": "app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.in)
			for name, want := range tt.want {
				p := s.Platform(name)
				if got := s.GroupName(p); got != want {
					t.Errorf("GroupName(%s) = %q, want %q", name, got, want)
				}
				if got := s.Resolve(p).Group.Name; got != want {
					t.Errorf("Resolve(%s).Group.Name = %q, want %q", name, got, want)
				}
			}
		})
	}
	_, err := Parse([]byte(doc("groups.json", `[{"name":"g"}]`, "a/run.json", `{"name":"a"}`)))
	if err == nil || err.Error() != "a/run.json: group: missing: every platform needs a group when groups are defined in the state" {
		t.Errorf("Parse(unlinked platform with explicit groups) error = %v", err)
	}
	_, err = Parse([]byte(doc("a/run.json", `{"name":"a","runlevel":"x"}`)))
	if err == nil || err.Error() != `a/run.json: runlevel: unknown group "x"` {
		t.Errorf("Parse(unknown runlevel) error = %v", err)
	}
}

func TestWarnings(t *testing.T) {
	s := mustParse(t, fullState)
	want := []string{
		`bsp/run.json: future_key: unknown key ignored`,
		`bsp/run.json: initrd_config: ignored (not supported)`,
		`device.json: disks_v3[0].type: unknown disk type "quantum-disk", disk "future" skipped`,
		`os/run.json: unknown-future: unknown key ignored`,
		`groups.json: ignored because device.json is present`,
	}
	if !slices.Equal(s.Warnings(), want) {
		t.Errorf("Warnings() = %q\nwant %q", s.Warnings(), want)
	}
	s = mustParse(t, doc("groups.json", `[{"name":"g","auto_recovery":{"policy":"always","retries":3}}]`))
	if want := []string{"groups.json: [0].auto_recovery.retries: unknown key ignored"}; !slices.Equal(s.Warnings(), want) {
		t.Errorf("Warnings() = %q, want %q", s.Warnings(), want)
	}
	if w := New().Warnings(); len(w) != 0 {
		t.Errorf("New().Warnings() = %q, want none", w)
	}
}

func TestDriversLookup(t *testing.T) {
	d := mustParse(t, fullState).Drivers()
	tests := []struct {
		alias    string
		sections []string
		want     []string
		ok       bool
	}{
		{"wifi", nil, []string{"cfg80211", "brcmfmac ${user-meta:wifi.opts}"}, true},
		{"bt", []string{"dtb:rpi4"}, []string{"hci_uart"}, true},
		{"bt", []string{"dtb:other"}, nil, false},
		{"gpu", nil, nil, false},
	}
	for _, tt := range tests {
		got, ok := d.Lookup(tt.alias, tt.sections...)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("Lookup(%q, %v) = %v, %v, want %v, %v", tt.alias, tt.sections, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := (*Drivers)(nil).Lookup("wifi"); ok {
		t.Errorf("nil Drivers Lookup ok = true, want false")
	}
}
