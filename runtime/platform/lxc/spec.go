// Package lxc runs Pantavisor platforms as LXC containers through liblxc
// (github.com/lxc/go-lxc). It is the only cgo package of the project; built
// without cgo, Start and Attach return ErrNoCgo.
//
// The platform's own lxc.container.conf is loaded first, then what
// Pantavisor owns is set on top (see [Render]): the rootfs overlay with the
// config overlay as an extra lower dir, uts name, role mounts under
// /pantavisor, /dev/log, log file and level, console capture, cgroup
// placement (/lxc/<name>, which the control socket's caller identity reads)
// and the container=pv-<group> environment.
//
// Usage:
//
//	c, err := lxc.Start(ctx, log, lxc.Spec{Name: "app", LXCPath: run + "/lxc", …})
//	go logs.Subscribe(c.Console(), "app", "console", …)
//	<-c.Done()        // init exited
//	err = c.Stop(ctx) // shutdown, then SIGKILL after Spec.StopTimeout
package lxc

import (
	"errors"
	"net/netip"
	"time"
)

// ErrNoCgo is returned by everything that needs liblxc in a build without cgo.
var ErrNoCgo = errors.New("lxc: built without cgo; containers are not available")

// ErrStart wraps container start failures; the message carries the tail of
// the LXC log.
var ErrStart = errors.New("start container")

// DefaultStopTimeout is how long Stop waits for a clean shutdown before
// killing the container (upstream: 5 s).
const DefaultStopTimeout = 5 * time.Second

// Spec is everything needed to start one platform.
type Spec struct {
	// Name is the platform name (container name and default uts name).
	Name string
	// Group names the platform's group; init gets container=pv-<Group>.
	Group string
	// LXCPath is the lxcpath; <LXCPath>/<Name>/config receives the final
	// configuration (so lxc-attach and pventer find the container).
	LXCPath string
	// ConfigFile is the platform's lxc.container.conf in the trail.
	ConfigFile string
	// VolumesDir replaces "/volumes" in the configuration's paths
	// ("" keeps them).
	VolumesDir string
	// ConfigOverlay is the copied _config dir; when it exists it becomes the
	// top lower dir of an overlay rootfs.
	ConfigOverlay string
	// RootfsMount sets lxc.rootfs.mount when not empty.
	RootfsMount string
	// RunDir is $RUN, the source of the /pantavisor mounts ("" = none).
	RunDir string
	// Rev is the running revision (non-mgmt logs are <logs>/<rev>/<name>).
	Rev string
	// LogDir is the log tree mounted at /pantavisor/logs (all of it for
	// mgmt, <rev>/<name> otherwise); "" = $RUN/logs. Upstream's $RUN/logs
	// is that tree, so mgmt tools such as pvr-sdk's logs API read it.
	LogDir string
	// Mgmt selects the mgmt role mounts.
	Mgmt bool
	// LogFile and LogLevel set lxc.log.file and lxc.log.level. Without a
	// LogFile the log goes to <LXCPath>/<Name>/lxc.log.
	LogFile, LogLevel string
	// ConsoleFile is filled by Start with the FIFO the console is logged to.
	ConsoleFile string
	// DevLog is a host socket bound on /dev/log ("" = none).
	DevLog string
	// AutoModFw binds /lib/firmware and /lib/modules/<KernelRelease>.
	AutoModFw     bool
	KernelRelease string
	// Init, when set, overrides lxc.init.cmd (run.json "exec").
	Init string
	// Extra holds "lxc.key = value" lines applied last (PV_LXC_EXTRA_CONF).
	Extra []string
	// CgroupName names the container's cgroups ("" = Name): the payload runs
	// in lxc/<CgroupName>, the monitor in lxc.monitor/<CgroupName>. App
	// Engine instances sharing a host use "<name>-<n>" (the control socket
	// strips the -<n> there).
	CgroupName string
	// MountHooks become lxc.hook.mount entries (the files of
	// <libdir>/pv/hooks_lxc-mount.d/, export.sh only for exporters).
	MountHooks []string
	// CgroupRelative sets lxc.cgroup.relative (App Engine mode).
	CgroupRelative bool
	// NoAutodev sets lxc.autodev = 0 (PV_DISABLE_AUTODEV).
	NoAutodev bool
	// Net, when set, gives the container its own network namespace with a
	// veth on a host bridge (run.json "network" mode pool).
	Net *Net
	// StopTimeout bounds the clean shutdown in Stop (0 = DefaultStopTimeout).
	StopTimeout time.Duration
}

// Net is a container's veth interface (IPAM, spec §7).
type Net struct {
	// Bridge is the host bridge the veth joins (lxc.net.N.link).
	Bridge string
	// Name is the interface name inside the container ("" = eth0).
	Name string
	// Address is the IPv4 address with its prefix length.
	Address netip.Prefix
	// Gateway is the default route ("" when invalid/zero).
	Gateway netip.Addr
	// MAC is the hardware address ("" lets LXC choose).
	MAC string
}
