package pvrtemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ErrArg is wrapped for an arg or config value the template cannot use.
var ErrArg = errors.New("bad template value")

// Options adjust paths for test fixtures; the zero value is pvr's.
type Options struct {
	// VolumesDir replaces /volumes in the rootfs path and bind mounts.
	VolumesDir string
	// RootVolume replaces root.squashfs.
	RootVolume string
	// Accounts are the image's /etc/passwd and /etc/group, which a
	// named image User needs.
	Accounts Accounts
}

// Files are a rendered container's configuration files.
type Files struct {
	RunJSON json.RawMessage
	// LXCConf is nil for a data container (PV_RUNLEVEL data or
	// PV_STATUS_GOAL MOUNTED), which pvr gives no LXC configuration.
	LXCConf []byte
}

// args reads template args of the shapes pvr accepts.
type args map[string]any

// str is a single-line arg; bools and numbers as JSON writes them.
func (a args) str(k string) (string, error) {
	switch v := a[k].(type) {
	case nil:
		return "", nil
	case string:
		if strings.ContainsAny(v, "\n\r") && k != "PV_LXC_EXTRA_CONF" {
			return "", fmt.Errorf("%w: %s has a line break", ErrArg, k)
		}
		return v, nil
	case bool:
		if v {
			return "true", nil
		}
		return "", nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("%w: %s is %T, want a string", ErrArg, k, v)
	}
}

// list is a list arg: a JSON array, or a comma-separated string.
func (a args) list(k string) ([]string, error) {
	switch v := a[k].(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return a.checkLines(k, strings.Split(v, ","))
	case []string:
		return a.checkLines(k, v)
	case []any:
		var out []string
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: %s has %T, want strings", ErrArg, k, e)
			}
			out = append(out, s)
		}
		return a.checkLines(k, out)
	default:
		return nil, fmt.Errorf("%w: %s is %T, want a list", ErrArg, k, v)
	}
}

func (a args) checkLines(k string, l []string) ([]string, error) {
	for _, s := range l {
		if strings.ContainsAny(s, "\n\r") {
			return nil, fmt.Errorf("%w: %s has a line break", ErrArg, k)
		}
	}
	return l, nil
}

// mustStrs reads several single-line args at once.
func (a args) strs(keys ...string) (map[string]string, error) {
	m := map[string]string{}
	for _, k := range keys {
		v, err := a.str(k)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// Render renders the builtin template for container name from src.
func Render(name string, src Src, o Options) (Files, error) {
	if name == "" || strings.ContainsAny(name, "/\n\r \t") || name == "." || name == ".." {
		return Files{}, fmt.Errorf("%w: container name %q", ErrArg, name)
	}
	if src.Template != "" && src.Template != Builtin {
		return Files{}, fmt.Errorf("%w: template %q (want %s)", ErrArg, src.Template, Builtin)
	}
	a := args(src.Args)
	s, err := a.strs("PV_RUNLEVEL", "PV_STATUS_GOAL", "PV_GROUP", "PV_RESTART_POLICY", "LXC_TTY_MAX", "LXC_PTY_MAX",
		"PV_DEBUG_MODE", "LXC_CGROUP_DEVICES_ALLOW", "PV_LXC_NAMESPACE_KEEP", "PV_LXC_NETWORK_TYPE", "PV_LXC_NETWORK_LINK",
		"PV_LXC_NETWORK_IPV4_ADDRESS", "PV_LXC_NETWORK_IPV4_GATEWAY", "PV_LXC_DISABLE_CONSOLE", "LXC_MOUNT_AUTO_PROC",
		"LXC_MOUNT_AUTO_SYS", "LXC_MOUNT_AUTO_GROUP", "PV_DISABLE_AUTODEV", "PV_SECURITY_FULLDEV", "PV_SECURITY_WITH_HOST",
		"PV_SECURITY_WITH_HOSTPROC", "PV_SECURITY_WITH_STORAGE", "PV_RESOLV_CONF_DISABLE", "PV_RESOLV_CONF_PATH",
		"PV_RUN_TMPFS_DISABLE", "PV_RUN_TMPFS_PATH", "PV_LXC_EXTRA_CONF")
	if err != nil {
		return Files{}, fmt.Errorf("container %s: %w", name, err)
	}
	data := s["PV_RUNLEVEL"] == "data" || s["PV_STATUS_GOAL"] == "MOUNTED"
	run, err := runJSON(name, src, a, s, data)
	if err != nil {
		return Files{}, fmt.Errorf("container %s: %w", name, err)
	}
	f := Files{RunJSON: run}
	if !data {
		if f.LXCConf, err = lxcConf(name, src, a, s, o); err != nil {
			return Files{}, fmt.Errorf("container %s: %w", name, err)
		}
	}
	return f, nil
}

// group is pvr's effective group: PV_GROUP, else the legacy runlevel.
func group(s map[string]string) string {
	if g := s["PV_GROUP"]; g != "" {
		return g
	}
	return s["PV_RUNLEVEL"]
}

// storageKey is pvr's storage name of an image volume path:
// /etc/NetworkManager/ → docker--etc-NetworkManager.
func storageKey(p string) string {
	return "docker-" + strings.ReplaceAll(strings.TrimSuffix(p, "/"), "/", "-")
}

type storage struct {
	Persistence string `json:"persistence"`
	Disk        string `json:"disk,omitempty"`
}

func parsePersistence(v string) storage {
	p, disk, _ := strings.Cut(v, "@")
	if p == "" {
		p = "built-in"
	}
	return storage{Persistence: p, Disk: disk}
}

// volumes merges the image's volumes (permanent unless said otherwise)
// with src.json persistence; the overlay is not among them.
func volumes(src Src) map[string]string {
	m := map[string]string{}
	for p := range src.DockerConfig.Volumes {
		m[p] = "permanent"
	}
	for p, v := range src.Persistence {
		if p != "lxc-overlay" {
			m[p] = v
		}
	}
	return m
}

func runJSON(name string, src Src, a args, s map[string]string, data bool) (json.RawMessage, error) {
	type drivers struct {
		Manual   []string `json:"manual"`
		Required []string `json:"required"`
		Optional []string `json:"optional"`
	}
	type run struct {
		Spec          string             `json:"#spec"`
		Name          string             `json:"name"`
		Config        string             `json:"config,omitempty"`
		Conditions    any                `json:"conditions,omitempty"`
		Drivers       drivers            `json:"drivers"`
		Group         string             `json:"group,omitempty"`
		Runlevel      string             `json:"runlevel,omitempty"`
		RestartPolicy string             `json:"restart_policy,omitempty"`
		StatusGoal    string             `json:"status_goal,omitempty"`
		Storage       map[string]storage `json:"storage"`
		Exports       any                `json:"exports,omitempty"`
		Logs          any                `json:"logs,omitempty"`
		Type          string             `json:"type,omitempty"`
		Roles         []string           `json:"roles,omitempty"`
		RootVolume    string             `json:"root-volume"`
		Volumes       []string           `json:"volumes"`
	}
	r := run{Spec: RunSpec, Name: name, Group: group(s), Runlevel: s["PV_RUNLEVEL"], RestartPolicy: s["PV_RESTART_POLICY"],
		StatusGoal: s["PV_STATUS_GOAL"], Storage: map[string]storage{}, RootVolume: "root.squashfs", Volumes: []string{}}
	var err error
	for k, p := range map[string]*[]string{"PV_DRIVERS_MANUAL": &r.Drivers.Manual, "PV_DRIVERS_REQUIRED": &r.Drivers.Required,
		"PV_DRIVERS_OPTIONAL": &r.Drivers.Optional} {
		if *p, err = a.list(k); err != nil {
			return nil, err
		}
		if *p == nil {
			*p = []string{}
		}
	}
	r.Conditions = a["PV_CONDITIONS"]
	for p, v := range volumes(src) {
		r.Storage[storageKey(p)] = parsePersistence(v)
	}
	r.Storage["lxc-overlay"] = storage{Persistence: "boot"}
	if v := src.Persistence["lxc-overlay"]; v != "" {
		r.Storage["lxc-overlay"] = parsePersistence(v)
	}
	extra, err := a.list("PV_EXTRA_VOLUMES")
	if err != nil {
		return nil, err
	}
	r.Volumes = append(r.Volumes, extra...)
	mounts, err := a.list("PV_VOLUME_MOUNTS")
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		v, _, _ := strings.Cut(m, ":")
		r.Volumes = append(r.Volumes, v)
	}
	if !data {
		r.Config = "lxc.container.conf"
		r.Type = "lxc"
		// pvr copies src.json's exports and logs; absent ones are left
		// out (the state format wants arrays, not null).
		if x := src.Extra["exports"]; len(x) > 0 && string(x) != "null" {
			r.Exports = x
		}
		if x := src.Extra["logs"]; len(x) > 0 && string(x) != "null" {
			r.Logs = x
		}
		if r.Roles, err = a.list("PV_ROLES"); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(r, "", "  ")
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// initCmd is lxc.init.cmd as pvr writes it: the first word bare, the
// others quoted; Entrypoint then Cmd, else Cmd, else /sbin/init.
func initCmd(c Config) (string, error) {
	var words []string
	if len(c.Entrypoint) > 0 {
		words = append(slices.Clone(c.Entrypoint), c.Cmd...)
	} else {
		words = c.Cmd
	}
	if len(words) == 0 || words[0] == "" {
		return "/sbin/init", nil
	}
	var b strings.Builder
	b.WriteString(words[0])
	for _, w := range words[1:] {
		if strings.ContainsAny(w, "\"\n\r") {
			return "", fmt.Errorf("%w: command word %q has a quote or line break", ErrArg, w)
		}
		b.WriteString(` "` + w + `"`) // pvr's quoting: none inside
	}
	if strings.ContainsAny(words[0], "\n\r") {
		return "", fmt.Errorf("%w: command %q has a line break", ErrArg, words[0])
	}
	return b.String(), nil
}

func lxcConf(name string, src Src, a args, s map[string]string, o Options) ([]byte, error) {
	vol := or(o.VolumesDir, "/volumes")
	root := or(o.RootVolume, "root.squashfs")
	c := src.DockerConfig
	var b strings.Builder
	line := func(f string, v ...any) { fmt.Fprintf(&b, f+"\n", v...) }
	line("lxc.tty.max = %s", or(s["LXC_TTY_MAX"], "8"))
	line("lxc.pty.max = %s", or(s["LXC_PTY_MAX"], "1024"))
	if s["PV_DEBUG_MODE"] != "" {
		line("lxc.log.file = /pv/logs/%s.log", name)
	}
	white, err := a.list("PVR_LXC_CGROUP_DEVICES_WHITE")
	if err != nil {
		return nil, err
	}
	if len(white) > 0 {
		line("lxc.cgroup.devices.deny = a")
		for _, w := range white {
			line("lxc.cgroup.devices.allow = %s", w)
		}
	} else {
		line("lxc.cgroup.devices.allow = %s", or(s["LXC_CGROUP_DEVICES_ALLOW"], "a"))
	}
	v1, err := a.list("PVR_LXC_CGROUP_V1")
	if err != nil {
		return nil, err
	}
	for _, l := range v1 {
		line("lxc.cgroup.%s", l)
	}
	line("lxc.rootfs.path = overlayfs:%s/%s/%s:%s/%s/lxc-overlay/upper", vol, name, root, vol, name)
	ic, err := initCmd(c)
	if err != nil {
		return nil, err
	}
	line("lxc.init.cmd = %s", ic)
	for _, v := range []string{c.WorkingDir, c.User} {
		if strings.ContainsAny(v, "\n\r") {
			return nil, fmt.Errorf("%w: %q has a line break", ErrArg, v)
		}
	}
	if c.WorkingDir != "" {
		line("lxc.init.cwd = %s", c.WorkingDir)
	}
	// The image's User runs the init, with the ids Docker would give it
	// (names resolved in the image's /etc/passwd and /etc/group).
	if c.User != "" {
		uid, gid, err := ResolveUser(c.User, o.Accounts)
		if err != nil {
			return nil, err
		}
		line("lxc.init.uid = %d", uid)
		line("lxc.init.gid = %d", gid)
	}
	env, err := args{"Env": anyList(c.Env)}.list("Env")
	if err != nil {
		return nil, err
	}
	extraEnv, err := a.list("PV_LXC_EXTRA_ENV")
	if err != nil {
		return nil, err
	}
	for _, e := range append(env, extraEnv...) {
		line("lxc.environment = %s", e)
	}
	if k := s["PV_LXC_NAMESPACE_KEEP"]; k != "" {
		line("lxc.namespace.keep = %s", k)
	} else if t := s["PV_LXC_NETWORK_TYPE"]; t == "" || t == "host" {
		line("lxc.namespace.keep = user net ipc")
	} else {
		line("lxc.namespace.keep = user ipc")
	}
	if s["PV_LXC_DISABLE_CONSOLE"] != "" {
		line("lxc.console.path = none")
	}
	line("lxc.mount.auto = %s %s %s", or(s["LXC_MOUNT_AUTO_PROC"], "proc"), or(s["LXC_MOUNT_AUTO_SYS"], "sys:rw"), or(s["LXC_MOUNT_AUTO_GROUP"], "cgroup"))
	if s["PV_DISABLE_AUTODEV"] != "" {
		line("lxc.autodev = 0")
	}
	if s["PV_SECURITY_FULLDEV"] != "" {
		line("lxc.mount.entry = /dev/ dev none bind,rw,create=dir 0 0")
	}
	if s["PV_SECURITY_WITH_HOST"] != "" {
		line("lxc.mount.entry = / host none bind,rw,create=dir 0 0")
	}
	if s["PV_SECURITY_WITH_HOSTPROC"] != "" {
		line("lxc.mount.entry = /proc/ host/proc none bind,rw,create=dir 0 0")
	}
	if s["PV_SECURITY_WITH_STORAGE"] != "" {
		line("lxc.mount.entry = /storage storage none bind,rw,create=dir 0 0")
	}
	if s["PV_RESOLV_CONF_DISABLE"] == "" {
		line("lxc.mount.entry = /etc/resolv.conf %s none bind,rw,create=file 0 0", or(s["PV_RESOLV_CONF_PATH"], "etc/resolv.conf"))
	}
	if s["PV_RUN_TMPFS_DISABLE"] == "" {
		line("lxc.mount.entry = tmpfs %s tmpfs rw,nodev,relatime,create=dir,mode=755 0 0", or(s["PV_RUN_TMPFS_PATH"], "run"))
	}
	vols := volumes(src)
	for _, p := range slices.Sorted(maps.Keys(vols)) {
		if strings.ContainsAny(p, "\n\r \t") || !strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..") {
			return nil, fmt.Errorf("%w: volume %q (want an absolute path inside the container)", ErrArg, p)
		}
		line("lxc.mount.entry = %s/%s/%s %s none bind,rw,create=dir 0 0", vol, name, storageKey(p), strings.TrimPrefix(p, "/"))
	}
	for _, k := range []string{"PV_LXC_CAP_DROP", "PV_LXC_CAP_KEEP"} {
		caps, err := a.list(k)
		if err != nil {
			return nil, err
		}
		for _, c := range caps {
			line("lxc.cap.%s = %s", strings.ToLower(strings.TrimPrefix(k, "PV_LXC_CAP_")), strings.ToLower(c))
		}
	}
	switch s["PV_LXC_NETWORK_TYPE"] {
	case "empty":
		line("lxc.net.0.type = empty")
	case "phys":
		line("lxc.net.0.type = phys")
		line("lxc.net.0.link = %s", s["PV_LXC_NETWORK_LINK"])
	case "veth":
		line("lxc.net.0.type = veth")
		line("lxc.net.0.link = lxcbr0")
		line("lxc.net.0.flags = up")
		if ip := s["PV_LXC_NETWORK_IPV4_ADDRESS"]; ip != "" {
			line("lxc.net.0.ipv4.address = %s", ip)
			line("lxc.net.0.ipv4.gateway = %s", or(s["PV_LXC_NETWORK_IPV4_GATEWAY"], "auto"))
		}
	}
	if x := s["PV_LXC_EXTRA_CONF"]; x != "" {
		line("%s", strings.TrimRight(x, "\n"))
	}
	for _, spec := range []struct{ key, format string }{
		{"PV_FILEIMPORTS", "lxc.mount.entry = /exports/%s %s none bind,rw,create=file 0 0"},
		{"PV_IMPORT_CONFIGVOLUMES", ""},
		{"PV_VOLUME_MOUNTS", "lxc.mount.entry = " + vol + "/" + name + "/%s %s none bind,rw,create=dir 0 0"},
	} {
		l, err := a.list(spec.key)
		if err != nil {
			return nil, err
		}
		for _, e := range l {
			parts := strings.Split(e, ":")
			first, last := parts[0], parts[len(parts)-1]
			if spec.key == "PV_IMPORT_CONFIGVOLUMES" {
				line("lxc.mount.entry = %s/%s/%s %s none bind,rw,create=dir,optional,noexec 0 0", vol, first, name, last)
				continue
			}
			line(spec.format, first, last)
		}
	}
	return []byte(b.String()), nil
}

func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}
