package pvtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
)

// Builtin fixture kinds ("builtin:<kind>[:<name>]" in setup.containers.tarballs).
const (
	// KindControl is a mgmt container with pvcontrol inside.
	KindControl = "control"
	// KindNobody has roles ["nobody"] (not mgmt) and pvcontrol inside.
	KindNobody = "nobody"
	// KindPlain has no roles key (so it is not mgmt, as the docs say) and
	// pvcontrol inside.
	KindPlain = "plain"
	// KindCrasher exits with status 1 after CrashAfter seconds.
	KindCrasher = "crasher"
	// KindReady has status_goal READY and signals it with pvcontrol.
	KindReady = "ready"
	// KindSDK is the pvr-sdk platform (roles ["mgmt"], group platform):
	// the pvr-sdk program as init on 127.0.0.1:12368, pvcontrol beside it.
	KindSDK = "pvr-sdk"
	// KindXCProvider exports xconnect services (services.json): "raw"
	// (unix, an echo server on /run/xc/raw.sock) and "api" (rest, on
	// /run/xc/api.sock, answering with the identity headers it got),
	// served by xcserve.
	KindXCProvider = "xc-provider"
	// KindXCConsumer requires "raw" at /run/pv/raw.sock and "api" at
	// /run/pv/api.sock, with role "operator"; xcserve is its client. It is
	// in group app.
	KindXCConsumer = "xc-consumer"
	// KindXCDBus exports the D-Bus service "system-bus" (dbus, on
	// /run/dbus/system_bus_socket) and "display" (wayland, on
	// /run/wayland-0: xcserve fdserve, which reads a passed descriptor): the host's Debian dbus-daemon with the
	// libraries the ELF walker finds for it, a bus whose policy lets only
	// user "operator" (uid 1000 in its /etc/passwd) own
	// org.pantavisor.Example. xcserve is its client.
	KindXCDBus = "xc-dbus"
	// KindXCDBusConsumer requires "system-bus" with role "operator" at
	// /run/dbus/system_bus_socket, and optionally with role "guest" (not
	// in the provider's passwd) at /run/pv/guest_bus, and "display" at
	// /run/user/wayland-0; xcserve is its client.
	KindXCDBusConsumer = "xc-dbus-consumer"
	// KindXCDRM exports the DRM service "display" (drm, the node
	// /dev/dri/card0 of the device's /dev, which it binds whole:
	// PV_SECURITY_FULLDEV). It needs a machine with a DRM device (the
	// x64-uefi image's bochs under QEMU: mkimage/boottest).
	KindXCDRM = "xc-drm"
	// KindXCDRMConsumer requires "display" with role "master" at
	// /dev/dri/card0; it is in group app, with LXC's own /dev. Its init
	// prints on its console, with the prefix "xc-drm:", when it started,
	// when the node was there and when it answered (uptimes), xcserve
	// drm's answer, every device node its /dev holds, and whether it can
	// make and read a node of the device's first disk (vda) it was not
	// granted (its device allow list, DRMConsumerDevices, lets it make
	// any node but open only LXC's standard ones and DRM's); then
	// "xc-drm-done".
	KindXCDRMConsumer = "xc-drm-consumer"
	// KindXCDRMRefused requires "display" like KindXCDRMConsumer, but its
	// device allow list lacks the DRM nodes: pv-xconnect must refuse the
	// link (on cgroup2 it cannot grant the node) with a clear error.
	KindXCDRMRefused = "xc-drm-refused"
)

// DRMConsumerDevices is KindXCDRMConsumer's device allow list
// (PVR_LXC_CGROUP_DEVICES_WHITE): LXC's standard one (mknod of any node;
// open of null, zero, full, random, urandom, tty, console, ptmx, pts)
// and the DRM nodes (the last rule), which pv-xconnect cannot add to a cgroup2 device
// program: on cgroup2 the consumer lists what it needs itself.
var DRMConsumerDevices = []any{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
	"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 226:* rwm"}

// CrashAfter is how long a crasher container lives, in seconds.
const CrashAfter = 3

var kinds = map[string]bool{KindControl: true, KindNobody: true, KindPlain: true, KindCrasher: true, KindReady: true, KindSDK: true,
	KindXCProvider: true, KindXCConsumer: true, KindXCDBus: true, KindXCDBusConsumer: true,
	KindXCDRM: true, KindXCDRMConsumer: true, KindXCDRMRefused: true}

// Kinds lists the builtin fixture kinds, sorted.
func Kinds() []string {
	list := make([]string, 0, len(kinds))
	for k := range kinds {
		list = append(list, k)
	}
	sort.Strings(list)
	return list
}

// ParseBuiltin parses "<kind>[:<name>]"; the name defaults to the kind.
func ParseBuiltin(s string) (kind, name string, err error) {
	kind, name, _ = strings.Cut(s, ":")
	if !kinds[kind] {
		return "", "", fmt.Errorf("unknown builtin fixture %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
	}
	if name == "" {
		name = kind
	}
	if err := validContainerName(name); err != nil {
		return "", "", err
	}
	return kind, name, nil
}

func validContainerName(n string) error {
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("container name %q: only letters, digits, '-', '_' and '.'", n)
		}
	}
	if n == "" || n == "." || n == ".." {
		return fmt.Errorf("container name %q is not valid", n)
	}
	return nil
}

// Fixtures builds builtin containers as pvr export tarballs, cached by
// content under CacheDir.
type Fixtures struct {
	// CacheDir holds rootfs/ images and <key>.tgz exports.
	CacheDir string
	// Pvcontrol is the static pvcontrol binary put into containers.
	Pvcontrol string
	// PvrSDK is the static pvr-sdk binary of the pvr-sdk fixture.
	PvrSDK string
	// XCServe is the static xcserve binary of the xconnect fixtures.
	XCServe string
}

// sdkConfig is the pvr-sdk fixture's built-in config.json (loopback).
const sdkConfig = "{\n  \"httpd\": {\n    \"listen\": \"127.0.0.1\",\n    \"port\": \"12368\"\n  }\n}\n"

// initFor returns the /sbin/init of a kind.
func initFor(kind string) string {
	switch kind {
	case KindCrasher:
		return fmt.Sprintf("#!/bin/sh\necho \"pv-fixture: crashing in %d s\"\nsleep %d\necho \"pv-fixture: crash\"\nexit 1\n", CrashAfter, CrashAfter)
	case KindXCProvider:
		return "#!/bin/sh\ntrap 'exit 0' PWR TERM INT\nxcserve serve /run/xc &\n" +
			"while :; do sleep 3600 & wait $!; done\n"
	case KindXCDBus:
		return "#!/bin/sh\ntrap 'exit 0' PWR TERM INT\nmkdir -p /run/dbus\n" +
			"dbus-daemon --nofork --nopidfile --config-file=/etc/dbus-1/xc.conf &\nxcserve fdserve /run/wayland-0 &\n" +
			"while :; do sleep 3600 & wait $!; done\n"
	case KindXCDRMConsumer:
		return xcDRMConsumerInit
	case KindReady:
		return "#!/bin/sh\ntrap 'exit 0' PWR TERM INT\necho \"pv-fixture: signalling ready\"\n" +
			"until pvcontrol signal ready; do sleep 1; done\n" +
			"while :; do sleep 3600 & wait $!; done\n"
	}
	return rootfs.DefaultInit
}

// xcDRMConsumerInit is KindXCDRMConsumer's init. The node may come
// after it starts (the DRM driver loads beside the containers): it waits
// for it. xcserve runs once beside the wait, so that reading it from the
// squashfs is less of the answer's time. stat's %t:%T are hex.
const xcDRMConsumerInit = `#!/bin/sh
trap 'exit 0' PWR TERM INT
t0=$(cut -d' ' -f1 /proc/uptime)
echo "xc-drm: started at $t0"
xcserve drm /dev/null >/dev/null 2>&1 &
until [ -c /dev/dri/card0 ]; do sleep 0.1; done
echo "xc-drm: node at $(cut -d' ' -f1 /proc/uptime)"
n=0
until v=$(xcserve drm /dev/dri/card0 2>&1); do
	n=$((n+1)); [ $n -eq 50 ] && echo "xc-drm: $v"
	sleep 0.1
done
echo "xc-drm: $v"
echo "xc-drm: usable at $(cut -d' ' -f1 /proc/uptime) (started at $t0)"
find /dev \( -type c -o -type b \) | while read -r f; do echo "xc-drm: node $f $(stat -c '%F %t:%T' "$f")"; done
if e=$(mknod /dev/.probe b $(tr : ' ' </sys/class/block/vda/dev) 2>&1); then
	if e=$(dd if=/dev/.probe of=/dev/null bs=512 count=1 2>&1); then
		echo "xc-drm: probe vda read"
	else
		echo "xc-drm: probe vda open refused: $e"
	fi
	rm -f /dev/.probe
else
	echo "xc-drm: probe vda mknod refused: $e"
fi
echo xc-drm-done
while :; do sleep 3600 & wait $!; done
`

// Build returns the path of the export tarball of fixture "<kind>[:<name>]".
func (f *Fixtures) Build(spec string) (string, error) {
	kind, name, err := ParseBuiltin(spec)
	if err != nil {
		return "", err
	}
	switch kind {
	case KindOCI:
		return f.buildOCI(spec, name)
	case KindNetwork:
		return f.buildNetwork(spec, name)
	}
	var files []rootfs.File
	if kind == KindControl || kind == KindNobody || kind == KindReady || kind == KindPlain || kind == KindSDK {
		pc, err := os.ReadFile(f.Pvcontrol)
		if err != nil {
			return "", fmt.Errorf("fixture %s: %w", spec, err)
		}
		files = append(files, rootfs.File{Path: "/usr/bin/pvcontrol", Mode: 0o755, Data: pc})
	}
	if kind == KindXCProvider || kind == KindXCConsumer || kind == KindXCDBus || kind == KindXCDBusConsumer || kind == KindXCDRMConsumer {
		xc, err := os.ReadFile(f.XCServe)
		if err != nil {
			return "", fmt.Errorf("fixture %s: %w", spec, err)
		}
		files = append(files, rootfs.File{Path: "/usr/bin/xcserve", Mode: 0o755, Data: xc})
	}
	if kind == KindXCDBus {
		bus, err := hostBinaries("/usr/bin/dbus-daemon")
		if err != nil {
			return "", fmt.Errorf("fixture %s: %w (install Debian dbus-daemon)", spec, err)
		}
		files = append(files, bus...)
		files = append(files,
			rootfs.File{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\noperator:x:1000:1000::/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
			rootfs.File{Path: "/etc/group", Data: []byte("root:x:0:\noperator:x:1000:\nnogroup:x:65534:\n")},
			rootfs.File{Path: "/etc/dbus-1/xc.conf", Data: []byte(xcBusConfig)})
	}
	conf := rootfs.Conf{Name: name}
	if kind == KindSDK {
		sdk, err := os.ReadFile(f.PvrSDK)
		if err != nil {
			return "", fmt.Errorf("fixture %s: %w", spec, err)
		}
		files = append(files, rootfs.File{Path: "/usr/bin/pvr-sdk", Mode: 0o755, Data: sdk},
			rootfs.File{Path: "/etc/pvr-sdk/config.json", Mode: 0o644, Data: []byte(sdkConfig)})
		// pvr-sdk is PID 1 itself and handles LXC's halt signal.
		conf.Init = "/usr/bin/pvr-sdk"
	}
	img, err := rootfs.Build(rootfs.Options{CacheDir: filepath.Join(f.CacheDir, "rootfs"), Init: initFor(kind), Files: files})
	if err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	// run.json and lxc.container.conf come from the one producer,
	// pvrtemplate, with the fixture's roles, group and goal as args.
	src := conf.Src()
	switch kind {
	case KindControl:
		src.Args["PV_ROLES"] = []any{"mgmt"}
	case KindNobody, KindCrasher:
		src.Args["PV_ROLES"] = []any{"nobody"}
	case KindReady:
		src.Args["PV_ROLES"] = []any{"mgmt"}
		src.Args["PV_STATUS_GOAL"] = "READY"
	case KindSDK:
		src.Args["PV_ROLES"] = []any{"mgmt"}
		src.Args["PV_GROUP"] = "platform"
	case KindXCConsumer, KindXCDBusConsumer, KindXCDRMConsumer, KindXCDRMRefused:
		// An app (restart_policy container): adding it is a non-reboot update.
		src.Args["PV_GROUP"] = "app"
		switch kind {
		case KindXCDRMConsumer:
			src.Args["PVR_LXC_CGROUP_DEVICES_WHITE"] = DRMConsumerDevices
		case KindXCDRMRefused:
			src.Args["PVR_LXC_CGROUP_DEVICES_WHITE"] = DRMConsumerDevices[:len(DRMConsumerDevices)-1]
		}
	case KindXCDRM:
		src.Args["PV_SECURITY_FULLDEV"] = "yes"
	}
	rendered, err := pvrtemplate.Render(name, src, pvrtemplate.Options{})
	if err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	var run map[string]any
	if err := json.Unmarshal(rendered.RunJSON, &run); err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	var inline map[string]any
	switch kind {
	case KindXCProvider:
		inline = map[string]any{"services.json": map[string]any{"#spec": "service-manifest-xconnect@1", "services": []any{
			map[string]any{"name": "raw", "type": "unix", "socket": "/run/xc/raw.sock"},
			map[string]any{"name": "api", "type": "rest", "socket": "/run/xc/api.sock"}}}}
	case KindXCDBus:
		inline = map[string]any{"services.json": map[string]any{"#spec": "service-manifest-xconnect@1", "services": []any{
			map[string]any{"name": "system-bus", "type": "dbus", "socket": "/run/dbus/system_bus_socket"},
			map[string]any{"name": "display", "type": "wayland", "socket": "/run/wayland-0"}}}}
	case KindXCDRM:
		inline = map[string]any{"services.json": map[string]any{"#spec": "service-manifest-xconnect@1", "services": []any{
			map[string]any{"name": "display", "type": "drm", "socket": "/dev/dri/card0"}}}}
	case KindXCDRMConsumer, KindXCDRMRefused:
		run["services"] = map[string]any{"required": []any{
			map[string]any{"name": "display", "type": "drm", "role": "master", "target": "/dev/dri/card0"}}}
	case KindXCDBusConsumer:
		run["services"] = map[string]any{
			"required": []any{map[string]any{"name": "system-bus", "type": "dbus", "role": "operator",
				"interface": "org.pantavisor.Example", "target": "/run/dbus/system_bus_socket"}},
			"optional": []any{map[string]any{"name": "system-bus", "type": "dbus", "role": "guest",
				"interface": "org.pantavisor.Example", "target": "/run/pv/guest_bus"},
				map[string]any{"name": "display", "type": "wayland", "target": "/run/user/wayland-0"}}}
	case KindXCConsumer:
		run["services"] = map[string]any{"required": []any{
			map[string]any{"name": "raw", "type": "unix", "role": "operator", "target": "/run/pv/raw.sock"},
			map[string]any{"name": "api", "type": "rest", "role": "operator", "target": "/run/pv/api.sock"}}}
	}
	return writeExport(f.CacheDir, name, run, inline, map[string]string{"root.squashfs": img}, map[string][]byte{"lxc.container.conf": rendered.LXCConf})
}

// writeExport writes (once per content) a pvr export tarball: json plus
// objects/<sha> for every object of the platform.
// inline are more JSON documents of the platform (services.json).
func writeExport(cache, name string, run, inline map[string]any, objFiles map[string]string, objData map[string][]byte) (string, error) {
	type obj struct {
		sha  string
		data []byte
		path string
	}
	objs := map[string]obj{}
	state := map[string]any{"#spec": "pantavisor-service-system@1", name + "/run.json": run}
	for key, doc := range inline {
		state[name+"/"+key] = doc
	}
	for key, p := range objFiles {
		sha, err := fileSha(p)
		if err != nil {
			return "", err
		}
		objs[key] = obj{sha: sha, path: p}
		state[name+"/"+key] = sha
	}
	for key, d := range objData {
		s := sha256.Sum256(d)
		sha := hex.EncodeToString(s[:])
		objs[key] = obj{sha: sha, data: d}
		state[name+"/"+key] = sha
	}
	js, err := json.Marshal(state) // map keys are sorted: deterministic
	if err != nil {
		return "", err
	}
	k := sha256.Sum256(js)
	out := filepath.Join(cache, "fixtures", name+"-"+hex.EncodeToString(k[:8])+".tgz")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".export-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	add := func(n string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := add("json", int64(len(js)), bytes.NewReader(js)); err != nil {
		return "", err
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		o := objs[key]
		if o.path == "" {
			if err := add("objects/"+o.sha, int64(len(o.data)), bytes.NewReader(o.data)); err != nil {
				return "", err
			}
			continue
		}
		fh, err := os.Open(o.path)
		if err != nil {
			return "", err
		}
		st, err := fh.Stat()
		if err == nil {
			err = add("objects/"+o.sha, st.Size(), fh)
		}
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

func fileSha(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
