package pantavisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/kmod"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

// bspMount mounts a revision's BSP kernel modules and firmware where the
// kernel and the containers look for them (image-build spec §1.1): the
// modules squashfs (run.json "modules_<release>", else "modules") on
// <Root>/lib/modules/<release>, the "firmware" squashfs on
// <Root>/lib/firmware; then it loads the drivers of the devices present
// (coldplug) and, with Hotplug, of the devices added later, so NICs and
// the like need not be in the initrd.
type bspMount struct {
	Log *slog.Logger
	// Root is "/" on a device; tests use a temporary directory.
	Root string
	// Sys is where sysfs is mounted, for coldplug.
	Sys string
	// Release is the running kernel's `uname -r`.
	Release string
	// Cmdline is the kernel command line (module parameters, blacklist).
	Cmdline string
	// File returns the host path of a bsp/ file of the revision.
	File func(name string) string
	// Hotplug keeps loading the drivers of devices added after coldplug
	// (USB and the like) for the rest of the boot.
	Hotplug bool
}

// containerModules are loaded before the coldplug starts: LXC mounts an
// overlay for every container.
var containerModules = []string{"fs-overlay"}

// firmware mounts b's firmware image on <Root>/lib/firmware.
func (m bspMount) firmware(set *volume.Set, b *state.BSP) {
	if b.Firmware == "" {
		m.Log.Info("bsp: no firmware entry in bsp/run.json")
	} else if err := set.Loop(m.File(b.Firmware), filepath.Join(m.Root, "lib", "firmware")); err != nil {
		m.Log.Error("bsp: FIRMWARE NOT MOUNTED, devices needing firmware may fail", "file", b.Firmware, "err", err)
	} else {
		m.Log.Info("bsp: firmware mounted", "file", b.Firmware, "on", "/lib/firmware")
	}
}

// modules mounts b's modules image for Release and starts the coldplug
// beside the caller: its WaitModules is how a container waits for the
// drivers it needs.
func (m bspMount) modules(set *volume.Set, b *state.BSP) *coldplug {
	mods := b.ModulesFor(m.Release)
	if mods == "" {
		m.Log.Info("bsp: no modules entry in bsp/run.json", "release", m.Release)
		return nil
	}
	dir := m.modulesDir()
	if err := set.Loop(m.File(mods), dir); err != nil {
		m.Log.Error("bsp: KERNEL MODULES NOT MOUNTED, only the initrd's modules are available", "file", mods, "release", m.Release, "err", err)
		return nil
	}
	m.Log.Info("bsp: modules mounted", "file", mods, "on", "/lib/modules/"+m.Release)
	idx, err := kmod.Open(dir)
	if err != nil {
		m.Log.Error("bsp: modules index", "err", err)
		return nil
	}
	cp := newColdplug(m.Sys)
	l := kmod.NewLoader(idx, m.Log)
	l.Sys = m.Sys
	l.OnLoad = cp.loadedModule
	l.UseCmdline(m.Cmdline)
	// What every container start asks the kernel for is loaded first:
	// a request_module from LXC would otherwise queue behind the
	// coldplug's (low-priority) loads.
	if _, err := l.LoadAll(containerModules); err != nil {
		m.Log.Warn("bsp: container modules", "err", err)
	}
	var events kmod.UeventSource
	if m.Hotplug {
		// Subscribed before coldplug: no device falls in between.
		if events, err = kmod.OpenUevents(); err != nil {
			m.Log.Warn("bsp: no hotplug", "err", err)
		}
	}
	// For the whole boot, like the mounts: PID 1 never stops it.
	go cp.run(l, events, m.Log.Warn)
	return cp
}

func (m bspMount) modulesDir() string { return filepath.Join(m.Root, "lib", "modules", m.Release) }

// markPending leaves kmod.PendingFile in the modules directory, where
// the modules image will be mounted: the modprobe applet the kernel runs
// for a request_module (overlay for a container, …) waits until the
// mount hides it or it is removed. It returns the file ("" when it could
// not be made: a request then sees the initrd's modules only).
func (m bspMount) markPending() string {
	dir := m.modulesDir()
	p := filepath.Join(dir, kmod.PendingFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		m.Log.Warn("bsp: modules pending mark", "err", err)
		return ""
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		m.Log.Warn("bsp: modules pending mark", "err", err)
		return ""
	}
	return p
}

// mountBSP mounts the running revision's BSP firmware and modules and
// starts the coldplug, before its containers are loaded. Only Pantavisor
// as PID 1 in embedded mode owns /lib/modules and /lib/firmware;
// appengine and standalone leave the host's alone. run calls it once per
// boot (a non-reboot update never changes the BSP). When the modules
// image has a late checksum (d.late), it is mounted once that passed,
// beside the container start; a failed one is not mounted at all.
func (d *Daemon) mountBSP(st *state.State) {
	if d.mode != Embedded || os.Getpid() != 1 {
		return
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		d.log.Error("bsp: kernel release", "err", err)
		return
	}
	trail := d.store.TrailDir(d.rev)
	m := bspMount{Log: d.log, Root: "/", Sys: "/sys", Release: strings.TrimSpace(string(rel)), Cmdline: d.opt.Cmdline, Hotplug: true,
		File: func(name string) string {
			p := filepath.Join(trail, "bsp", filepath.FromSlash(name))
			if _, err := os.Stat(p); err != nil {
				if sha, ok := st.Object("bsp/" + name); ok {
					return d.store.ObjectPath(sha)
				}
			}
			return p
		}}
	d.mountBSPWith(m, st.BSP(), d.late)
}

// mountBSPWith is mountBSP's work with m; late is the revision's late
// checksum (nil: none). A BSP without a modules or firmware entry mounts
// nothing (logged). A volume that does not mount is logged as an error
// but is not fatal: the containers still start, with the initrd's
// modules only, so the device stays reachable for a fixing update
// instead of rebooting into the same failure. It returns the volumes it
// mounts (kept for the whole boot: a BSP change always reboots; the
// modules image is added once its checksum passed); the running coldplug
// (nil without BSP modules) is published for WaitDrivers.
func (d *Daemon) mountBSPWith(m bspMount, b *state.BSP, late *lateCheck) *volume.Set {
	set := volume.NewSet(m.Log)
	if b == nil {
		m.Log.Info("bsp: no bsp/run.json, no modules or firmware to mount")
		return set
	}
	m.firmware(set, b)
	if late == nil || len(late.mods) == 0 || b.ModulesFor(m.Release) == "" {
		d.modulesMounted(m.modules(set, b))
		return set
	}
	pending := make(chan struct{})
	d.mu.Lock()
	d.modsPending = pending
	d.mu.Unlock()
	mark := m.markPending()
	go func() {
		<-late.modsDone
		var cp *coldplug
		if late.modsErr == nil {
			cp = m.modules(set, b)
		} else {
			m.Log.Error("bsp: KERNEL MODULES NOT MOUNTED: bad checksum", "err", late.modsErr)
		}
		if mark != "" {
			os.Remove(mark) // hidden by the mount when it worked
		}
		d.modulesMounted(cp)
		close(pending)
	}()
	return set
}

// modulesMounted publishes the BSP's coldplug (nil: no BSP modules).
func (d *Daemon) modulesMounted(cp *coldplug) {
	d.mu.Lock()
	d.coldplug = cp
	d.mu.Unlock()
	if cp != nil {
		go func() {
			<-cp.Done()
			d.boot.Mark("coldplug")
			d.log.Info(fmt.Sprintf("boot: coldplug done %.2fs since /init", d.bootSince("coldplug").Seconds()))
		}()
	}
}

// modulesPending is Env.ModulesPending.
func (d *Daemon) modulesPending() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.modsPending
}

// WaitDrivers is the hook point for a container that needs drivers: it
// returns once the kernel has each module of names or the BSP's
// coldplug finished without it, or ctx ends. While the modules image
// waits for its checksum it waits for that first. Before RUN, and
// without BSP modules, it returns at once.
func (d *Daemon) WaitDrivers(ctx context.Context, names ...string) error {
	if p := d.modulesPending(); p != nil {
		select {
		case <-p:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.mu.Lock()
	cp := d.coldplug
	d.mu.Unlock()
	return cp.WaitModules(ctx, names...)
}
