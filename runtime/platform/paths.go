package platform

import (
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/disk"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

// Paths are the host directories platforms run from (spec §2).
type Paths struct {
	// Storage is the storage mount point (/storage): trails/<rev>/… and disks/.
	Storage string
	// Volumes is PV_DISK_VOLDIR (/volumes).
	Volumes string
	// Configs is PV_SYSTEM_CONFDIR (/configs).
	Configs string
	// Run is $RUN, the source of the /pantavisor mounts.
	Run string
	// LXCPath is the lxcpath ("" means <Run>/lxc).
	LXCPath string
	// Logs is PV_LOG_DIR; LXC logs go to <Logs>/<rev>/<plat>/lxc/lxc.log.
	Logs string
	// DevLog is the host socket bound on /dev/log for dev-log platforms.
	DevLog string
	// KernelRelease is `uname -r`, for the /lib/modules bind.
	KernelRelease string
	// LXCLogLevel is PV_LXC_LOG_LEVEL ("" leaves the default).
	LXCLogLevel string
	// RootfsMount is lxc.rootfs.mount, the host directory liblxc mounts
	// rootfs on before pivoting (upstream <usr>/lib/lxc/rootfs; "" keeps
	// liblxc's default).
	RootfsMount string
	// HooksDir is <libdir>/pv/hooks_lxc-mount.d ("" = no mount hooks).
	HooksDir string
	// Exports is where exporters' root file systems are shown
	// (<Exports>/<plat>, upstream /exports); "" exports nothing.
	Exports string
	// AppEngine sets lxc.cgroup.relative.
	AppEngine bool
	// NoAutodev is PV_DISABLE_AUTODEV.
	NoAutodev bool
	// ExtraConf is PV_LXC_EXTRA_CONF ("lxc.key = value" lines).
	ExtraConf []string
	// MediaDir is PV_SYSTEM_MEDIADIR, below which crypt disks mount.
	MediaDir string
}

// mountHooks lists HooksDir's hooks; export.sh only for exporters.
func (ps Paths) mountHooks(exporter bool) []string {
	if ps.HooksDir == "" {
		return nil
	}
	ents, err := os.ReadDir(ps.HooksDir)
	if err != nil {
		return nil
	}
	var hooks []string
	for _, e := range ents {
		if e.IsDir() || (e.Name() == "export.sh" && !exporter) {
			continue
		}
		hooks = append(hooks, filepath.Join(ps.HooksDir, e.Name()))
	}
	return hooks
}

// Layout returns the volume layout of ps.
func (ps Paths) Layout() volume.Layout {
	return volume.Layout{
		VolumesDir: ps.Volumes,
		DisksDir:   filepath.Join(ps.Storage, "disks"),
		ConfigsDir: ps.Configs,
	}
}

// trail is the materialised revision directory.
func (ps Paths) trail(rev string) string { return filepath.Join(ps.Storage, "trails", rev) }

// Volume describes what to mount for p in revision rev. Files come from the
// platform's state directory (p.Dir); mount points and the config overlay
// use the platform name. Storage entries naming a disk of dev (or all of
// them, when dev has a default disk) live on that disk.
func (ps Paths) Volume(p *state.Platform, rev string, dev *state.Device) volume.Platform {
	vols := []string{}
	if p.RootVolume != "" {
		vols = append(vols, p.RootVolume)
	}
	vols = append(vols, p.Volumes...)
	storage := map[string]volume.Persistence{}
	disks := map[string]volume.DiskDir{}
	var def *state.Disk
	if dev != nil {
		for i := range dev.Disks {
			if dev.Disks[i].Default {
				def = &dev.Disks[i]
				break
			}
		}
	}
	for name, s := range p.Storage {
		storage[name] = volume.ParsePersistence(s.Persistence)
		d := def
		if s.Disk != "" {
			if d = dev.Disk(s.Disk); d == nil {
				// The state checks run.json disks; keep the name for the error.
				disks[name] = volume.DiskDir{Name: s.Disk}
				continue
			}
		}
		if d != nil {
			disks[name] = volume.DiskDir{Name: d.Name, Dir: disk.Dir(d, ps.MediaDir), MountPoint: disk.MountsDir(d)}
		}
	}
	return volume.Platform{
		Name:        p.Name,
		Rev:         rev,
		Dir:         filepath.Join(ps.trail(rev), p.Dir),
		Volumes:     vols,
		Storage:     storage,
		StorageDisk: disks,
		ConfigDir:   filepath.Join(ps.trail(rev), "_config", p.Dir),
	}
}

// LXC returns the container spec of p, member of group, in revision rev.
func (ps Paths) LXC(p *state.Platform, group, rev string) lxc.Spec {
	lxcpath := ps.LXCPath
	if lxcpath == "" {
		lxcpath = filepath.Join(ps.Run, "lxc")
	}
	spec := lxc.Spec{
		Name:           p.Name,
		Group:          group,
		LXCPath:        lxcpath,
		ConfigFile:     filepath.Join(ps.trail(rev), p.Dir, p.Config),
		VolumesDir:     ps.Volumes,
		ConfigOverlay:  ps.Layout().ConfigOverlay(p.Name),
		RunDir:         ps.Run,
		Rev:            rev,
		LogDir:         ps.Logs,
		Mgmt:           p.Mgmt(),
		LogLevel:       ps.LXCLogLevel,
		AutoModFw:      p.AutoModFw,
		KernelRelease:  ps.KernelRelease,
		Init:           p.Exec,
		MountHooks:     ps.mountHooks(p.Exports),
		RootfsMount:    ps.RootfsMount,
		CgroupRelative: ps.AppEngine,
		NoAutodev:      ps.NoAutodev,
		Extra:          append([]string(nil), ps.ExtraConf...),
	}
	if p.Network != nil && p.Network.Hostname != "" {
		spec.Extra = append(spec.Extra, "lxc.uts.name = "+p.Network.Hostname)
	}
	if ps.Logs != "" {
		spec.LogFile = filepath.Join(ps.Logs, rev, p.Name, "lxc", "lxc.log")
	}
	if p.DevLog != nil && *p.DevLog && ps.DevLog != "" {
		spec.DevLog = ps.DevLog
	}
	return spec
}

// DMManifests returns the manifests of p's "dm:" volumes, by file: the
// inline JSON values "<dir>/_dm/<file>.json" of st, which the state's
// signature covers (an object of that name would be a file the signature
// only covers by its sha, and is not taken).
func DMManifests(st *state.State, p *state.Platform) map[string][]byte {
	out := map[string][]byte{}
	for _, ref := range append([]string{p.RootVolume}, p.Volumes...) {
		file, h := state.VolumeFile(ref)
		if h == "" {
			continue
		}
		k := p.Dir + "/_dm/" + file + ".json"
		if _, obj := st.Object(k); obj {
			continue
		}
		if raw, ok := st.Raw(k); ok {
			out[file] = raw
		}
	}
	return out
}
