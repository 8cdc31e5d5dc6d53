package lxc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadConf is wrapped by errors about a platform's lxc.container.conf.
var ErrBadConf = errors.New("bad lxc config")

// Item is one "key = value" line of an LXC configuration.
type Item struct {
	Key, Value string
}

// ParseConf parses LXC configuration text. Blank lines and '#' comments are
// skipped; every other line must be "lxc.<key> = <value>". known, when not
// nil, tells whether liblxc supports a key. Errors name the line and key and
// wrap ErrBadConf.
func ParseConf(data []byte, known func(key string) bool) ([]Item, error) {
	var items []Item
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: %q is not key = value", ErrBadConf, n, clip(line))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !strings.HasPrefix(k, "lxc.") || strings.ContainsAny(k, " \t\x00") {
			return nil, fmt.Errorf("%w: line %d: bad key %q", ErrBadConf, n, clip(k))
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: line %d: %s: NUL in value", ErrBadConf, n, k)
		}
		if known != nil && !known(k) {
			return nil, fmt.Errorf("%w: line %d: unsupported key %q", ErrBadConf, n, k)
		}
		items = append(items, Item{Key: k, Value: v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConf, err)
	}
	return items, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// FormatConf renders items as LXC configuration text.
func FormatConf(items []Item) []byte {
	var b bytes.Buffer
	for _, it := range items {
		fmt.Fprintf(&b, "%s = %s\n", it.Key, it.Value)
	}
	return b.Bytes()
}

// get returns the last value of key in items.
func get(items []Item, key string) (string, bool) {
	for i := len(items) - 1; i >= 0; i-- {
		if items[i].Key == key {
			return items[i].Value, true
		}
	}
	return "", false
}

// set replaces every key entry by one with value (appended if absent).
func set(items []Item, key, value string) []Item {
	out := drop(items, func(k string) bool { return k == key })
	return append(out, Item{Key: key, Value: value})
}

func drop(items []Item, match func(key string) bool) []Item {
	out := items[:0:0]
	for _, it := range items {
		if !match(it.Key) {
			out = append(out, it)
		}
	}
	return out
}

// upstreamVolumes is the volumes directory pvr writes into container configs.
const upstreamVolumes = "/volumes"

// rewriteVolumes moves "/volumes/…" paths to dir.
func rewriteVolumes(s, dir string) string {
	if dir == "" || dir == upstreamVolumes {
		return s
	}
	fields := strings.Split(s, ":")
	for i, f := range fields {
		sp := strings.SplitN(f, " ", 2)
		if sp[0] == upstreamVolumes || strings.HasPrefix(sp[0], upstreamVolumes+"/") {
			sp[0] = dir + strings.TrimPrefix(sp[0], upstreamVolumes)
		}
		fields[i] = strings.Join(sp, " ")
	}
	return strings.Join(fields, ":")
}

// Render computes the configuration Pantavisor runs spec with: the
// platform's own items, then what Pantavisor owns (spec §7 "pv_lxc plugin").
// It also returns the host overlay upper directory to create, if any.
func Render(spec Spec, own []Item, unified bool) ([]Item, string, error) {
	items := append([]Item(nil), own...)
	// Paths written for /volumes follow the configured volumes dir.
	for i, it := range items {
		switch it.Key {
		case "lxc.rootfs.path", "lxc.mount.entry", "lxc.mount.fstab", "lxc.hook.mount", "lxc.hook.start-host", "lxc.hook.pre-start":
			items[i].Value = rewriteVolumes(it.Value, spec.VolumesDir)
		}
	}
	root, ok := get(items, "lxc.rootfs.path")
	if !ok || root == "" {
		return nil, "", fmt.Errorf("%w: lxc.rootfs.path: missing", ErrBadConf)
	}
	upper := ""
	if typ, rest, ok := strings.Cut(root, ":"); ok && (typ == "overlay" || typ == "overlayfs") {
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 || i == len(rest)-1 {
			return nil, "", fmt.Errorf("%w: lxc.rootfs.path: %q: want %s:<lower>:<upper>", ErrBadConf, root, typ)
		}
		upper = rest[i+1:]
		if spec.ConfigOverlay != "" {
			if fi, err := os.Stat(spec.ConfigOverlay); err == nil && fi.IsDir() {
				root = typ + ":" + spec.ConfigOverlay + ":" + rest
			}
		}
		items = set(items, "lxc.rootfs.path", root)
	}
	if spec.RootfsMount != "" {
		items = set(items, "lxc.rootfs.mount", spec.RootfsMount)
	}
	if spec.Init != "" {
		items = set(items, "lxc.init.cmd", spec.Init)
	}
	if _, ok := get(items, "lxc.uts.name"); !ok {
		items = append(items, Item{"lxc.uts.name", spec.Name})
	}
	if spec.LogFile != "" {
		items = set(items, "lxc.log.file", spec.LogFile)
	}
	if spec.LogLevel != "" {
		items = set(items, "lxc.log.level", spec.LogLevel)
	}
	if spec.ConsoleFile != "" {
		items = set(items, "lxc.console.logfile", spec.ConsoleFile)
	}
	// Caller identity: the ctrl server reads /lxc/<name> from the cgroup
	// path, so the payload goes there (liblxc 5 would use
	// lxc.payload.<name>). liblxc wants the monitor dir set too.
	items = drop(items, func(k string) bool { return strings.HasPrefix(k, "lxc.cgroup.dir") })
	items = append(items, Item{"lxc.cgroup.dir.monitor", MonitorCgroup(spec.cgroupName())})
	items = append(items, Item{"lxc.cgroup.dir.container", PayloadCgroup(spec.cgroupName())})
	if spec.CgroupRelative {
		items = set(items, "lxc.cgroup.relative", "1")
	}
	if spec.NoAutodev {
		items = set(items, "lxc.autodev", "0")
	}
	for _, h := range spec.MountHooks {
		items = append(items, Item{"lxc.hook.mount", h})
	}
	group := spec.Group
	if group == "" {
		group = "platform"
	}
	items = append(items, Item{"lxc.environment", "container=pv-" + group})
	if spec.Net != nil {
		items = netItems(items, *spec.Net)
	}
	items = append(items, roleMounts(spec)...)
	if spec.DevLog != "" {
		items = append(items, Item{"lxc.mount.entry", spec.DevLog + " dev/log none bind,create=file,optional 0 0"})
	}
	if spec.AutoModFw {
		items = append(items, Item{"lxc.mount.entry", "/lib/firmware lib/firmware none bind,ro,create=dir,optional 0 0"})
		if spec.KernelRelease != "" {
			m := "/lib/modules/" + spec.KernelRelease
			items = append(items, Item{"lxc.mount.entry", m + " " + strings.TrimPrefix(m, "/") + " none bind,ro,create=dir,optional 0 0"})
		}
	}
	for _, l := range spec.Extra {
		extra, err := ParseConf([]byte(l), nil)
		if err != nil {
			return nil, "", fmt.Errorf("extra config: %w", err)
		}
		items = append(items, extra...)
	}
	if unified {
		items = devicesV2(items)
	}
	return items, upper, nil
}

// devicesV2 rewrites the device rules for a pure cgroup2 host, where
// liblxc has no devices.allow file to write lxc.cgroup.devices.* to and
// enforces lxc.cgroup2.devices.* with a BPF program instead. Upstream's
// pv_lxc drops the rules there and allows every device; a container its
// config restricts stays restricted here. Rules keep
// their order (both v1 and liblxc's BPF list restart at a global "a"
// rule, so "deny a" then an allow list means the allow list only). v1
// rules not starting with a global rule add to what the parent allows,
// everything on these hosts, so "allow a" goes first; a config with no
// rule gets every device, as on v1.
func devicesV2(items []Item) []Item {
	var rules []Item
	for _, it := range items {
		kind, ok := strings.CutPrefix(it.Key, "lxc.cgroup.devices.")
		if !ok {
			kind, ok = strings.CutPrefix(it.Key, "lxc.cgroup2.devices.")
		}
		if !ok || (kind != "allow" && kind != "deny") {
			continue
		}
		if it.Value == "" { // LXC: an empty value clears the list
			rules = rules[:0]
			continue
		}
		rules = append(rules, Item{"lxc.cgroup2.devices." + kind, it.Value})
	}
	items = drop(items, func(k string) bool {
		return strings.HasPrefix(k, "lxc.cgroup.devices.") || strings.HasPrefix(k, "lxc.cgroup2.devices.")
	})
	if len(rules) == 0 || !globalDeviceRule(rules[0].Value) {
		items = append(items, Item{"lxc.cgroup2.devices.allow", "a"})
	}
	return append(items, rules...)
}

// globalDeviceRule reports whether v names every device ("a", "a *:* rwm").
func globalDeviceRule(v string) bool {
	f := strings.Fields(v)
	return len(f) > 0 && f[0] == "a"
}

func (s Spec) cgroupName() string {
	if s.CgroupName != "" {
		return s.CgroupName
	}
	return s.Name
}

// PayloadCgroup is the cgroup (relative to each hierarchy's root) the
// container's processes run in: /proc/<pid>/cgroup shows "0::/lxc/<name>".
func PayloadCgroup(name string) string { return "lxc/" + name }

// MonitorCgroup is the cgroup of the container's LXC monitor process.
func MonitorCgroup(name string) string { return "lxc.monitor/" + name }

// logDir is the source of the /pantavisor/logs mounts.
func (s Spec) logDir() string {
	if s.LogDir != "" {
		return s.LogDir
	}
	return filepath.Join(s.RunDir, "logs")
}

// roleMounts returns the /pantavisor binds for spec's role (spec §7).
func roleMounts(spec Spec) []Item {
	if spec.RunDir == "" {
		return nil
	}
	run, logs := spec.RunDir, spec.logDir()
	entry := func(src, dst, opts string) Item {
		return Item{"lxc.mount.entry", src + " " + dst + " none " + opts + " 0 0"}
	}
	if spec.Mgmt {
		return []Item{
			entry(run, "pantavisor", "bind,ro,create=dir"),
			entry(logs, "pantavisor/logs", "bind,ro,create=dir"),
			entry(filepath.Join(run, "user-meta"), "pantavisor/user-meta", "bind,ro,create=dir"),
			entry(filepath.Join(run, "device-meta"), "pantavisor/device-meta", "bind,ro,create=dir"),
		}
	}
	return []Item{
		// The sockets may not exist yet when the daemon starts containers
		// first; optional keeps such a start from failing.
		entry(filepath.Join(run, "pv-ctrl-log"), "pantavisor/pv-ctrl-log", "bind,rw,create=file,optional"),
		entry(filepath.Join(run, "pv-ctrl"), "pantavisor/pv-ctrl", "bind,rw,create=file,optional"),
		entry(filepath.Join(logs, spec.Rev, spec.Name), "pantavisor/logs", "bind,ro,create=dir"),
		entry(filepath.Join(run, "user-meta."+spec.Name), "pantavisor/user-meta", "bind,ro,create=dir"),
		entry(filepath.Join(run, "device-meta."+spec.Name), "pantavisor/device-meta", "bind,ro,create=dir"),
	}
}

// RoleDirs lists the host directories the role mounts of spec need; Start
// creates them so a fresh run dir does not fail the start.
func RoleDirs(spec Spec) []string {
	if spec.RunDir == "" {
		return nil
	}
	run, logs := spec.RunDir, spec.logDir()
	if spec.Mgmt {
		// $RUN/logs is also the mount point of the log tree inside the
		// read-only /pantavisor bind.
		return []string{logs, filepath.Join(run, "logs"), filepath.Join(run, "user-meta"), filepath.Join(run, "device-meta")}
	}
	return []string{
		filepath.Join(logs, spec.Rev, spec.Name),
		filepath.Join(run, "user-meta."+spec.Name),
		filepath.Join(run, "device-meta."+spec.Name),
	}
}

// netItems appends the veth of n at the next free lxc.net index and takes
// "net" out of lxc.namespace.keep, so the container gets its own stack.
func netItems(items []Item, n Net) []Item {
	next := 0
	for _, it := range items {
		rest, ok := strings.CutPrefix(it.Key, "lxc.net.")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		var i int
		if _, err := fmt.Sscanf(idx, "%d", &i); err == nil && i >= next {
			next = i + 1
		}
	}
	for i, it := range items {
		if it.Key != "lxc.namespace.keep" {
			continue
		}
		var keep []string
		for _, ns := range strings.Fields(it.Value) {
			if ns != "net" {
				keep = append(keep, ns)
			}
		}
		items[i].Value = strings.Join(keep, " ")
	}
	out := items[:0:0]
	for _, it := range items {
		if it.Key == "lxc.namespace.keep" && it.Value == "" {
			continue
		}
		out = append(out, it)
	}
	name := n.Name
	if name == "" {
		name = "eth0"
	}
	p := fmt.Sprintf("lxc.net.%d.", next)
	out = append(out, Item{p + "type", "veth"}, Item{p + "link", n.Bridge}, Item{p + "name", name}, Item{p + "flags", "up"})
	if n.Address.IsValid() {
		out = append(out, Item{p + "ipv4.address", n.Address.String()})
	}
	if n.Gateway.IsValid() {
		out = append(out, Item{p + "ipv4.gateway", n.Gateway.String()})
	}
	if n.MAC != "" {
		out = append(out, Item{p + "hwaddr", n.MAC})
	}
	return out
}
