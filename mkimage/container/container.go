// Package container makes the containers of a factory revision: the
// default platforms built from a static busybox (a management container
// with pvcontrol, a network container running DHCP on the first NIC),
// and the platforms of a reference device merged from a pvr checkout or
// export (PVR_MERGE_SRC).
//
// A built container is a set of state entries for trails/0:
//
//	<name>/root.squashfs       object (mksquashfs -reproducible -all-root)
//	<name>/lxc.container.conf  object
//	<name>/run.json            inline (type lxc, roles, group)
//
//	ents, err := container.Build(ctx, container.Spec{Name: "pv-mgmt", Template: container.Mgmt,
//		Busybox: bb, Pvcontrol: pvc, Work: dir, Epoch: epoch})
package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
	"github.com/pantavisor/pantavisor-go/mkimage/squashfs"
)

// Templates of the default containers.
const (
	// Mgmt is a management container (roles ["mgmt"], group platform):
	// busybox, pvcontrol and pvcurl, idle init.
	Mgmt = "mgmt"
	// Network brings up DHCP (busybox udhcpc) on the first NIC (group root).
	Network = "network"
	// SDK is the pvr-sdk container (roles ["mgmt"], group platform): the
	// static pvr-sdk program as init, serving pvr clone/post, the pvtx API
	// and the logs API on port 12368 (loopback only by default), with
	// busybox and pvcontrol beside it.
	SDK = "pvr-sdk"
)

// Templates lists the template names, for messages and recipe checks.
func Templates() []string { return []string{Mgmt, Network, SDK} }

// ErrTemplate reports an unknown template name.
var ErrTemplate = errors.New("unknown container template")

// Spec describes one default container.
type Spec struct {
	Name     string
	Template string
	// Busybox is the host path of a static busybox for the target.
	Busybox string
	// Pvcontrol is the host path of a static pvcontrol (Mgmt and SDK).
	Pvcontrol string
	// PvrSDK is the host path of a static pvr-sdk (SDK only).
	PvrSDK string
	// Pvcurl is the host path of a static pvcurl (Mgmt, optional).
	Pvcurl string
	// Work is a scratch directory for the rootfs and the outputs.
	Work string
	// Epoch stamps the squashfs.
	Epoch int64
	// Comp is the squashfs compressor (default xz).
	Comp string
	// NTPRoot is a target root unpacked from Debian's toybox and the
	// libraries it links (libc6, libcrypt1): the network template gets
	// toybox's sntp and sets the clock from the lease's NTP servers (or
	// pool.ntp.org). "" leaves time sync out.
	NTPRoot string
	// WifiRoot is a target root unpacked from Debian's wpasupplicant and
	// the libraries it links: the network template gets wpa_supplicant
	// and joins the Wi-Fi network of the pvnet_* settings (pv-wifi) when
	// the board has a wireless interface. "" leaves Wi-Fi out.
	WifiRoot string
	// Cache, when set, keeps squashfs images by the digest of their
	// staged root, epoch and compressor: unchanged containers are not
	// compressed again.
	Cache string
	// Made, when set, is called with each squashfs image made afresh
	// (not taken from Cache) and the directory it was made from, before
	// the image enters the cache: the builder describes its files for the
	// SBOM from the tree it has (sbom.DescribeSquashfs).
	Made func(image, dir string) error
	// CPUs, when set, is asked for CPUs before mksquashfs runs: it runs
	// with as many compressor threads as it got (0: one per CPU) and
	// gives them back with release (the builder's cpus.Pool).
	CPUs func(ctx context.Context) (n int, release func(), err error)
}

// Entries are state entries: Objects maps keys to host files, Inline
// keys to JSON values.
type Entries struct {
	Objects map[string]string
	Inline  map[string]json.RawMessage
}

// NewEntries returns empty entries.
func NewEntries() Entries {
	return Entries{Objects: map[string]string{}, Inline: map[string]json.RawMessage{}}
}

// Merge adds o to e; a key present in both is an error.
func (e Entries) Merge(o Entries) error {
	for k, v := range o.Objects {
		if e.has(k) {
			return fmt.Errorf("container: state key %q defined twice", k)
		}
		e.Objects[k] = v
	}
	for k, v := range o.Inline {
		if e.has(k) {
			return fmt.Errorf("container: state key %q defined twice", k)
		}
		e.Inline[k] = v
	}
	return nil
}

func (e Entries) has(k string) bool {
	_, a := e.Objects[k]
	_, b := e.Inline[k]
	return a || b
}

// Keys returns every key, sorted.
func (e Entries) Keys() []string {
	var ks []string
	for k := range e.Objects {
		ks = append(ks, k)
	}
	for k := range e.Inline {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// applets are the busybox commands linked in every default container.
var applets = []string{"sh", "ash", "cat", "chmod", "cp", "echo", "env", "grep", "hostname", "ifconfig", "ip", "kill",
	"ln", "ls", "mkdir", "mount", "mv", "ping", "ps", "rm", "route", "sed", "sleep", "sync", "test", "top", "touch", "tr",
	"udhcpc", "umount", "uname", "vi", "wget"}

// Both inits are PID 1 of their container, which the kernel shields from
// every signal it has no handler for: they trap LXC's halt signal (SIGPWR
// unless lxc.signal.halt says otherwise; TERM and INT as well) and wait on
// a background child, so the trap runs at once and a stop is clean rather
// than a SIGKILL after the stop timeout.

// mgmtInit idles: the container is the place to run pvcontrol from.
const mgmtInit = `#!/bin/sh
# pv-mgmt init: an idle management container (pvcontrol is in /usr/bin).
pid=
trap 'echo "pv-mgmt: stopping"; [ -n "$pid" ] && kill "$pid" 2>/dev/null; exit 0' PWR TERM INT
echo "pv-mgmt: started"
while :; do
	sleep 3600 &
	pid=$!
	wait "$pid"
done
`

// networkInit runs DHCP on the first network interface that is not lo.
const networkInit = `#!/bin/sh
# pv-network init: DHCP on the first NIC (host network namespace).
# udhcpc runs in the background: this shell stays PID 1 to stop it.
pid=
stop() {
	echo "pv-network: stopping"
	[ -f /tmp/pv-ntp.pid ] && kill "$(cat /tmp/pv-ntp.pid)" 2>/dev/null
	[ -f /tmp/wpa_supplicant.pid ] && kill "$(cat /tmp/wpa_supplicant.pid)" 2>/dev/null
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid"
	fi
	exit 0
}
trap stop PWR TERM INT
ip link set lo up
# Wi-Fi when credentials are configured and wpa_supplicant is here.
wifi=
if [ -x /sbin/wpa_supplicant ] && /sbin/pv-wifi conf > /tmp/wpa_supplicant.conf; then
	wifi=yes
fi
# The NIC's driver may still be loading: Pantavisor coldplugs beside the
# container start. Wait for it (a wireless one with Wi-Fi) up to 30 s.
nic=
tries=0
while [ $tries -lt 150 ]; do
	if [ -n "$wifi" ]; then
		nic=$(/sbin/pv-wifi iface) && break
		nic=
	fi
	if [ -z "$nic" ]; then
		for d in /sys/class/net/*; do
			n=${d##*/}
			[ "$n" = lo ] && continue
			nic=$n
			break
		done
	fi
	[ -n "$nic" ] && [ -z "$wifi" ] && break
	tries=$((tries + 1))
	sleep 0.2
done
if [ -z "$nic" ]; then
	echo "pv-network: no network interface"
	while :; do
		sleep 3600 &
		pid=$!
		wait "$pid"
	done
fi
ip link set "$nic" up
if [ -n "$wifi" ] && [ -d "/sys/class/net/$nic/wireless" -o -e "/sys/class/net/$nic/phy80211" ]; then
	echo "pv-network: Wi-Fi on $nic"
	wpa_supplicant -B -i "$nic" -c /tmp/wpa_supplicant.conf -P /tmp/wpa_supplicant.pid
fi
echo "pv-network: DHCP on $nic"
udhcpc -f -S -i "$nic" -s /etc/udhcpc.script -t 5 -T 3 -A 10 -O ntpsrv &
pid=$!
# udhcpc ending by itself ends the container, as before.
wait "$pid"
`

// udhcpcScript applies a lease with busybox ip.
const udhcpcScript = `#!/bin/sh
# udhcpc event script: configure address, default route and DNS.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	;;
bound|renew)
	ip -4 addr flush dev "$interface"
	ip -4 addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip -4 route replace default via "$r" dev "$interface"; break; done
	# /etc/resolv.conf is the device's central one (bound, not replaced):
	# the daemon and the containers that bind it resolve with the lease's
	# DNS servers.
	{
		[ -n "$domain" ] && echo "search $domain"
		for d in $dns; do echo "nameserver $d"; done
	} > /etc/resolv.conf
	echo "pv-network: $interface $ip/${mask:-24} router $router"
	# time: the lease's NTP servers (option 42), else pool.ntp.org; one
	# pv-ntp loop, started again when the servers change
	if [ -x /sbin/pv-ntp ]; then
		srv=${ntpsrv:-pool.ntp.org}
		if [ "$srv" != "$(cat /tmp/pv-ntp.servers 2>/dev/null)" ]; then
			[ -f /tmp/pv-ntp.pid ] && kill "$(cat /tmp/pv-ntp.pid)" 2>/dev/null
			echo "$srv" > /tmp/pv-ntp.servers
			/sbin/pv-ntp $srv &
			echo $! > /tmp/pv-ntp.pid
		fi
	fi
	;;
esac
exit 0
`

// wifiScript renders pv-network's Wi-Fi configuration. The credentials
// are upstream's network-platform settings: pvnet_type=wifi, pvnet_ssid,
// pvnet_pass and pvnet_security (psk, none or wep; psk when a pass is
// given) on the kernel command line (uEnv localargs), overridden by the
// user metadata keys pv-network.pvnet_* (mirrored as
// /pantavisor/user-meta/pvnet_*: an SSID with spaces, or set later with
// pvcontrol). "pv-wifi iface" prints the first wireless interface,
// "pv-wifi conf" the wpa_supplicant configuration; both fail when Wi-Fi
// is not configured. The paths come from the environment for the tests.
const wifiScript = `#!/bin/sh
# pv-wifi iface|conf: the Wi-Fi settings of pv-network (see pvnet_*).
cmdline=${PV_CMDLINE:-/proc/cmdline}
meta=${PV_USERMETA:-/pantavisor/user-meta}
sysnet=${PV_SYSNET:-/sys/class/net}
type= ssid= pass= security=
set -f
for w in $(cat "$cmdline" 2>/dev/null); do
	v=${w#*=}
	v=${v#\"}
	v=${v%\"}
	case "$w" in
	pvnet_type=*) type=$v ;;
	pvnet_ssid=*) ssid=$v ;;
	pvnet_pass=*) pass=$v ;;
	pvnet_security=*) security=$v ;;
	esac
done
set +f
for k in type ssid pass security; do
	[ -f "$meta/pvnet_$k" ] || continue
	IFS= read -r v < "$meta/pvnet_$k" || [ -n "$v" ] || continue
	eval "$k=\$v"
done
if [ -n "$type" ] && [ "$type" != wifi ]; then
	exit 1
fi
if [ -z "$ssid" ]; then
	exit 1
fi
[ -n "$security" ] || { [ -n "$pass" ] && security=psk || security=none; }
case "$1" in
iface)
	for d in "$sysnet"/*; do
		if [ -d "$d/wireless" ] || [ -e "$d/phy80211" ]; then
			echo "${d##*/}"
			exit 0
		fi
	done
	exit 1
	;;
conf)
	# quoted strings: wpa_supplicant reads up to the last quote
	echo "network={"
	echo "	ssid=\"$ssid\""
	echo "	scan_ssid=1"
	case "$security" in
	psk)
		if [ ${#pass} -eq 64 ] && [ -z "$(echo "$pass" | tr -d 0-9a-fA-F)" ]; then
			echo "	psk=$pass"
		else
			echo "	psk=\"$pass\""
		fi
		;;
	none)
		echo "	key_mgmt=NONE"
		;;
	wep)
		echo "	key_mgmt=NONE"
		echo "	wep_key0=\"$pass\""
		echo "	wep_tx_keyidx=0"
		;;
	*)
		echo "pv-wifi: pvnet_security=$security not supported (psk, none, wep)" >&2
		exit 1
		;;
	esac
	echo "}"
	;;
*)
	echo "usage: pv-wifi iface|conf" >&2
	exit 2
	;;
esac
`

// ntpLoop sets the clock with toybox's sntp from the first server that
// answers, again every 1000 s (every 30 s until one did).
const ntpLoop = `#!/bin/sh
# pv-ntp SERVER...: time sync of pv-network (toybox sntp).
trap 'exit 0' TERM INT
while :; do
	wait=30
	for s in "$@"; do
		if out=$(sntp -s "$s" 2>&1); then
			echo "pv-network: time from $s: $out"
			wait=1000
			break
		fi
		echo "pv-network: time from $s failed: $out"
	done
	sleep $wait &
	wait $!
done
`

// rootfs stages the container root in dir.
func (s Spec) rootfs(dir string) (init string, err error) {
	for _, d := range []string{"bin", "sbin", "etc", "dev", "proc", "sys", "run", "tmp", "var", "usr/bin", "usr/sbin", "root", "pantavisor"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return "", err
	}
	if s.Busybox == "" {
		return "", fmt.Errorf("container %s: no busybox", s.Name)
	}
	if err := copyFile(s.Busybox, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return "", fmt.Errorf("container %s: %w", s.Name, err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":       "root:x:0:\n",
		"etc/hostname":    s.Name + "\n",
		"etc/resolv.conf": "",
	}
	switch s.Template {
	case Mgmt:
		files["sbin/pv-init"] = mgmtInit
		if s.Pvcontrol == "" {
			return "", fmt.Errorf("container %s: template mgmt needs pvcontrol", s.Name)
		}
		if err := copyFile(s.Pvcontrol, filepath.Join(dir, "usr/bin/pvcontrol"), 0o755); err != nil {
			return "", fmt.Errorf("container %s: %w", s.Name, err)
		}
		if s.Pvcurl != "" {
			if err := copyFile(s.Pvcurl, filepath.Join(dir, "usr/bin/pvcurl"), 0o755); err != nil {
				return "", fmt.Errorf("container %s: %w", s.Name, err)
			}
		}
	case Network:
		files["sbin/pv-init"] = networkInit
		files["etc/udhcpc.script"] = udhcpcScript
		files["sbin/pv-wifi"] = wifiScript
		if s.NTPRoot != "" {
			if err := addProg(initrd.Sysroot{Dir: s.NTPRoot}, dir, toybox, "usr/bin/sntp"); err != nil {
				return "", fmt.Errorf("container %s: sntp: %w", s.Name, err)
			}
			files["sbin/pv-ntp"] = ntpLoop
		}
		if s.WifiRoot != "" {
			if err := addProg(initrd.Sysroot{Dir: s.WifiRoot}, dir, wpaSupplicant, "sbin/wpa_supplicant"); err != nil {
				return "", fmt.Errorf("container %s: wpa_supplicant: %w", s.Name, err)
			}
		}
	case SDK:
		if s.PvrSDK == "" || s.Pvcontrol == "" {
			return "", fmt.Errorf("container %s: template pvr-sdk needs pvr-sdk and pvcontrol", s.Name)
		}
		for bin, src := range map[string]string{"usr/bin/pvr-sdk": s.PvrSDK, "usr/bin/pvcontrol": s.Pvcontrol} {
			if err := copyFile(src, filepath.Join(dir, bin), 0o755); err != nil {
				return "", fmt.Errorf("container %s: %w", s.Name, err)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "etc/pvr-sdk"), 0o755); err != nil {
			return "", err
		}
		// The built-in configuration; the state key
		// _config/<name>/etc/pvr-sdk/config.json overlays it.
		files["etc/pvr-sdk/config.json"] = SDKConfig
		if err := os.MkdirAll(filepath.Join(dir, "var/lib/pvr-sdk"), 0o755); err != nil {
			return "", err
		}
		// pvr-sdk is PID 1 itself: it handles LXC's halt signal.
		init = "/usr/bin/pvr-sdk"
	default:
		return "", fmt.Errorf("container %s: %w %q (want one of %s)", s.Name, ErrTemplate, s.Template, strings.Join(Templates(), ", "))
	}
	for p, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(data, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), mode); err != nil {
			return "", err
		}
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil { // umask
			return "", err
		}
	}
	if init == "" {
		init = "/sbin/pv-init"
	}
	return init, nil
}

// SDKConfig is the pvr-sdk container's built-in config.json: the seeds'
// shape, listening on the device's loopback only.
const SDKConfig = `{
  "httpd": {
    "listen": "127.0.0.1",
    "port": "12368"
  }
}
`

// Build makes the state entries of one default container.
func Build(ctx context.Context, s Spec) (Entries, error) {
	e := NewEntries()
	dir := filepath.Join(s.Work, s.Name)
	if err := os.RemoveAll(dir); err != nil {
		return e, err
	}
	root := filepath.Join(dir, "rootfs")
	init, err := s.rootfs(root)
	if err != nil {
		return e, err
	}
	sq := filepath.Join(dir, "root.squashfs")
	if err := s.squash(ctx, root, sq); err != nil {
		return e, fmt.Errorf("container %s: %w", s.Name, err)
	}
	src, err := DefaultSrc(s.Name, s.Template, init)
	if err != nil {
		return e, err
	}
	f, err := pvrtemplate.Render(s.Name, src, pvrtemplate.Options{})
	if err != nil {
		return e, err
	}
	conf := filepath.Join(dir, "lxc.container.conf")
	if err := os.WriteFile(conf, f.LXCConf, 0o644); err != nil {
		return e, err
	}
	run := f.RunJSON
	e.Objects[s.Name+"/root.squashfs"] = sq
	e.Objects[s.Name+"/lxc.container.conf"] = conf
	e.Inline[s.Name+"/run.json"] = run
	return e, nil
}

// DefaultSrc is the src.json of a default container: pvr's builtin
// template with args that give the busybox platforms their settings
// (roles and group, a 4-tty console, mixed proc/sys/cgroup mounts, the
// device's /etc/resolv.conf bound as pvr's template does for any
// container, so they resolve with the network container's lease; a tmpfs
// on /tmp, no AppArmor).
func DefaultSrc(name, template, init string) (pvrtemplate.Src, error) {
	args := map[string]any{
		"LXC_TTY_MAX":          "4",
		"LXC_MOUNT_AUTO_PROC":  "proc:mixed",
		"LXC_MOUNT_AUTO_SYS":   "sys:mixed",
		"LXC_MOUNT_AUTO_GROUP": "cgroup:mixed",
		"PV_LXC_EXTRA_CONF": "lxc.uts.name = " + name + "\n" +
			"lxc.apparmor.profile = unconfined\n" +
			"lxc.mount.entry = tmpfs tmp tmpfs rw,nodev,relatime,mode=1777 0 0",
	}
	switch template {
	case Mgmt, SDK:
		args["PV_ROLES"] = []any{"mgmt"}
		args["PV_GROUP"] = "platform"
	case Network:
		// it writes the DHCP lease's DNS servers into the central
		// resolv.conf, which the others bind
		args["PV_GROUP"] = "root"
	default:
		return pvrtemplate.Src{}, fmt.Errorf("container %s: %w %q", name, ErrTemplate, template)
	}
	return pvrtemplate.Src{Template: pvrtemplate.Builtin, Args: args, DockerConfig: pvrtemplate.Config{
		Cmd: []string{init},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}}, nil
}

// RunJSON is the run.json of a default container (pvrtemplate renders
// it): type lxc, the squashfs root with a boot-persistent overlay; mgmt
// containers get roles ["mgmt"] and group platform, network containers
// group root.
func RunJSON(name, template string) (json.RawMessage, error) {
	src, err := DefaultSrc(name, template, "/sbin/pv-init")
	if err != nil {
		return nil, err
	}
	f, err := pvrtemplate.Render(name, src, pvrtemplate.Options{})
	return f.RunJSON, err
}

// LXCConf is the lxc.container.conf of a default container (pvrtemplate
// renders it): the squashfs root under an overlay (the paths Pantavisor
// mounts the volumes at), host network and IPC, init as given.
func LXCConf(name, init string) string {
	src, _ := DefaultSrc(name, Mgmt, init)
	f, err := pvrtemplate.Render(name, src, pvrtemplate.Options{})
	if err != nil {
		// Only a name or init with a line break gets here; Build
		// reports it, this test helper keeps its signature.
		return ""
	}
	return string(f.LXCConf)
}

// squash makes out from root, through the cache when there is one.
func (s Spec) squash(ctx context.Context, root, out string) error {
	o := squashfs.Options{Comp: s.Comp, Epoch: s.Epoch}
	mksquashfs := func(out string) error {
		if s.CPUs != nil {
			n, release, err := s.CPUs(ctx)
			if err != nil {
				return err
			}
			defer release()
			o.Processors = n
		}
		return squashfs.Make(ctx, root, out, o)
	}
	if s.Cache == "" {
		if err := mksquashfs(out); err != nil {
			return err
		}
		if s.Made != nil {
			return s.Made(out, root)
		}
		return nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "v1 %s %d\x00", s.Comp, s.Epoch)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%o\x00", rel, fi.Mode())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00", t)
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fmt.Fprintf(h, "%d\x00", fi.Size())
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c := filepath.Join(s.Cache, "squashfs-"+hex.EncodeToString(h.Sum(nil)))
	if _, err := os.Stat(c); err != nil {
		if err := os.MkdirAll(s.Cache, 0o755); err != nil {
			return err
		}
		// a private temporary: builds side by side that make the same
		// entry must not write one file together (a half-written entry
		// was renamed into the cache)
		tmp, err := os.MkdirTemp(s.Cache, "squashfs-tmp-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := mksquashfs(filepath.Join(tmp, "out")); err != nil {
			return err
		}
		if s.Made != nil {
			if err := s.Made(filepath.Join(tmp, "out"), root); err != nil {
				return err
			}
		}
		if err := os.Rename(filepath.Join(tmp, "out"), c); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(c)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// toybox and wpaSupplicant are where Debian's toybox and wpasupplicant
// packages put the programs.
const (
	toybox        = "/bin/toybox"
	wpaSupplicant = "/sbin/wpa_supplicant"
)

// addProg copies the program path and the libraries it needs from the
// target root sr into the container root dir (symbolic links on the way
// kept), and links name (relative to dir) to it, unless that is the
// program's own path.
func addProg(sr initrd.Sysroot, dir, path, name string) error {
	// Needed reads host paths: the program's file inside the sysroot
	prog, _, err := sr.Resolve(path)
	if err != nil {
		return err
	}
	libs, err := sr.Needed([]string{filepath.Join(sr.Dir, prog)})
	if err != nil {
		return err
	}
	for _, p := range append([]string{path}, libs...) {
		final, links, err := sr.Resolve(p)
		if err != nil {
			return err
		}
		for l, target := range links {
			dst := filepath.Join(dir, l)
			if _, err := os.Lstat(dst); err == nil {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
		}
		fi, err := os.Stat(filepath.Join(sr.Dir, final))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, final)), 0o755); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(sr.Dir, final), filepath.Join(dir, final), fi.Mode().Perm()); err != nil {
			return err
		}
	}
	// prog may be under /usr on a merged /usr
	if filepath.Clean("/"+name) == prog {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		return err
	}
	return os.Symlink(prog, filepath.Join(dir, name))
}
