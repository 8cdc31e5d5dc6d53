package state

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Restart policies of platforms and groups.
const (
	RestartSystem    = "system"
	RestartContainer = "container"
)

// Status goals of platforms and groups.
const (
	GoalMounted = "MOUNTED"
	GoalStarted = "STARTED"
	GoalReady   = "READY"
)

// Platform is one container, described by <dir>/run.json.
type Platform struct {
	// Name is the run.json "name"; it may differ from Dir.
	Name string
	// Type is the plugin, always "lxc" (the default when absent).
	Type string
	// Config is the LXC config file, relative to Dir.
	Config string
	// RootVolume is the root filesystem image, relative to Dir; it may
	// carry a "<handler>:" prefix (see VolumeFile).
	RootVolume string
	// Group is the explicit group name ("" when unset).
	Group string
	// Runlevel is the legacy group name ("" when unset).
	Runlevel string
	// RestartPolicy is "system", "container" or "" (inherit from group).
	RestartPolicy string
	// StatusGoal is "MOUNTED", "STARTED", "READY" or "" (inherit).
	StatusGoal string
	// Volumes are extra images, relative to Dir, maybe "<handler>:" prefixed.
	Volumes []string
	// Roles is the array form of "roles"; RolesSet reports that the key was
	// present at all (array or object form).
	Roles    []string
	RolesSet bool
	// AutoRecovery is the platform's own policy (nil: inherit from group).
	AutoRecovery *AutoRecovery
	// Storage maps volume names to their persistence.
	Storage map[string]StorageSpec
	// Logs are the logger configurations, each a map of string pairs.
	Logs []map[string]string
	// Drivers are the driver aliases the platform needs.
	Drivers DriverRefs
	// Services are the xconnect services the platform consumes (nil if none).
	Services *Services
	// Exports is set when run.json has an "exports" array.
	Exports bool
	// DevLog is the "dev-log" setting (nil when absent).
	DevLog *bool
	// AutoModFw is false only when "automodfw" is "no" (or false).
	AutoModFw bool
	// Network is the "network" object (nil when absent).
	Network *Network
	// Dir is the state directory: the first element of the run.json key.
	Dir string
	// Share is the raw "share" value (nil when absent); upstream ignores it.
	Share json.RawMessage
	// Exec is the "exec" init command ("" when unset).
	Exec string
	// Provides are the services from <dir>/services.json (nil if none).
	Provides []ServiceExport
}

// Mgmt reports whether the platform has the mgmt role: only an array
// "roles" that contains "mgmt" grants it, as the docs promise (roles
// default to empty). Upstream also treats a platform without a "roles" key
// as mgmt (spec §5 ⚠); that would hand the whole control API to every
// container that forgot the key, so it is not copied.
func (p *Platform) Mgmt() bool {
	return slices.Contains(p.Roles, "mgmt")
}

// String returns "<name> (<dir>/run.json)".
func (p *Platform) String() string { return fmt.Sprintf("%s (%s)", p.Name, p.Key()) }

// Key returns the state key of the platform's run.json.
func (p *Platform) Key() string { return p.Dir + "/run.json" }

// VolumeFile returns the file part of a volume reference, without an
// optional "<handler>:" prefix, and the handler ("" when there is none).
func VolumeFile(ref string) (file, handler string) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			return ref[i+1:], ref[:i]
		}
	}
	return ref, ""
}

// StorageSpec is one entry of run.json "storage".
type StorageSpec struct {
	// Persistence is "permanent", "revision" or "boot".
	Persistence string
	// Disk names a disk from device.json/disks.json ("" for the default).
	Disk string
}

// DriverRefs are the driver aliases of run.json "drivers".
type DriverRefs struct {
	Required, Optional, Manual []string
}

// Services are the xconnect requirements of run.json "services".
type Services struct {
	Required, Optional []ServiceRequirement
}

// ServiceRequirement is one consumed service.
type ServiceRequirement struct {
	Name, Type, Role, Interface, Target string
}

// ServiceExport is one provided service of <dir>/services.json.
type ServiceExport struct {
	Name, Type, Socket string
}

// Network is the run.json "network" object.
type Network struct {
	// Mode is "host" or "pool".
	Mode, Pool, Hostname, IP, MAC string
	// Interfaces is the raw "interfaces" value (documented, not interpreted
	// upstream); nil when absent.
	Interfaces json.RawMessage
}

// Auto-recovery policies.
const (
	RecoveryNo            = "no"
	RecoveryAlways        = "always"
	RecoveryOnFailure     = "on-failure"
	RecoveryUnlessStopped = "unless-stopped"
)

// Backoff policies (besides a duration).
const (
	BackoffReboot = "reboot"
	BackoffNever  = "never"
)

// AutoRecovery is an "auto_recovery" object of a platform or group.
type AutoRecovery struct {
	// Policy is no, always, on-failure or unless-stopped (default no).
	Policy string
	// MaxRetries is the retry limit, 0 = unlimited.
	MaxRetries int
	// RetryDelay is the first delay in seconds.
	RetryDelay float64
	// BackoffFactor multiplies the delay on each retry (default 1).
	BackoffFactor float64
	// ResetWindow is the uptime after which the retry counter resets.
	ResetWindow time.Duration
	// StableTimeout is the time to survive after reaching the goal.
	StableTimeout time.Duration
	// BackoffPolicy is "reboot" (default), "never" or a duration text such
	// as "30s", "10min", "1h"; see BackoffWait.
	BackoffPolicy string
}

// BackoffWait returns the wait of a duration backoff policy and true, or
// 0 and false for "reboot" and "never".
func (a *AutoRecovery) BackoffWait() (time.Duration, bool) {
	d, err := parseBackoff(a.BackoffPolicy)
	if err != nil || d == 0 {
		return 0, false
	}
	return d, true
}

// Group is an orchestration group of device.json or groups.json.
type Group struct {
	Name, Description string
	// StatusGoal defaults to STARTED, RestartPolicy to container.
	StatusGoal, RestartPolicy string
	// Timeout is the goal timeout; 0 means unset (the caller applies
	// PV_UPDATER_GOALS_TIMEOUT).
	Timeout time.Duration
	// AutoRecovery is the default for member platforms (nil: none).
	AutoRecovery *AutoRecovery
}

// DefaultGroups returns the groups used when the state has neither
// device.json groups nor groups.json (/etc/pantavisor/defaults/groups.json).
func DefaultGroups() []Group {
	return []Group{
		{Name: "data", StatusGoal: GoalMounted, RestartPolicy: RestartSystem, Timeout: 30 * time.Second},
		{Name: "root", StatusGoal: GoalStarted, RestartPolicy: RestartSystem, Timeout: 30 * time.Second},
		{Name: "platform", StatusGoal: GoalStarted, RestartPolicy: RestartSystem, Timeout: 30 * time.Second},
		{Name: "app", StatusGoal: GoalStarted, RestartPolicy: RestartContainer, Timeout: 30 * time.Second,
			AutoRecovery: &AutoRecovery{Policy: RecoveryOnFailure, MaxRetries: 5, RetryDelay: 5,
				BackoffFactor: 2, StableTimeout: 30 * time.Second, BackoffPolicy: BackoffReboot}},
	}
}

// BSP is bsp/run.json. File names are relative to bsp/.
type BSP struct {
	Linux, Initrd, Fdt, Fit, Rpiab string
	// Modules is the plain "modules" entry; see ModulesFor.
	Modules  string
	Firmware string
	Addons   []string
	// ModulesByRelease maps a kernel release to its "modules_<release>"
	// entry (nil when there is none).
	ModulesByRelease map[string]string
}

// ModulesFor returns the modules image for the running kernel release
// (uname -r): "modules_<release>" when present, else "modules".
func (b *BSP) ModulesFor(release string) string {
	if m, ok := b.ModulesByRelease[release]; ok {
		return m
	}
	return b.Modules
}

// Drivers is bsp/drivers.json (driver-aliases@1): for each section ("all",
// "dtb:<model>", "ovl:<overlay>", or upstream's "fitconfig:<name>") the
// modules of each alias, as "module [options]" lines that may contain
// ${user-meta:key} references.
type Drivers struct {
	Sections map[string]map[string][]string
}

// Lookup returns the modules of alias from the first of sections that
// defines it, else from "all".
func (d *Drivers) Lookup(alias string, sections ...string) ([]string, bool) {
	if d == nil {
		return nil, false
	}
	for _, sec := range sections {
		if mods, ok := d.Sections[sec][alias]; ok {
			return mods, true
		}
	}
	mods, ok := d.Sections["all"][alias]
	return mods, ok
}

// Signature is a pvs@2 signature, normally _sigs/<name>.json.
type Signature struct {
	// Key is the state key of the signature.
	Key string
	// Protected and Sig are the base64url "protected" and "signature".
	Protected, Sig string
	// Header is the decoded protected header.
	Header SigHeader
}

// SigHeader is the decoded protected header of a pvs@2 signature.
type SigHeader struct {
	Alg, Typ string
	JWK      json.RawMessage
	X5C      []string
	Include  []string
	Exclude  []string
}

// ChangeKind says how a path differs between two states.
type ChangeKind int

// Change kinds.
const (
	Added ChangeKind = iota + 1
	Removed
	Modified
)

// String returns "added", "removed" or "modified".
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return "unknown"
}

// Change is one differing path, with its Owner.
type Change struct {
	Path, Owner string
	Kind        ChangeKind
}
