package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/boottime"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/embedded"
	"github.com/pantavisor/pantavisor-go/runtime/kmod"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
)

// pid1Mounts mounts the kernel file systems (proc, sys, dev, run) when
// this process is the kernel's init, before anything reads /proc: the
// kernel command line carries pv_rev and pv_try. PID 1 of a container
// finds /proc mounted already and mounts nothing over its runtime's.
func pid1Mounts() error {
	if os.Getpid() != 1 {
		return nil
	}
	if _, err := os.Stat("/proc/self"); err == nil {
		return nil
	}
	return embedded.MountAll(embedded.BaseMounts)
}

// prepareFor returns the INIT hook for PID 1 in embedded and standalone
// modes: the initrd's modules, the reaper, securityfs and the storage
// device; and the hook that waits for the initrd's modules left
// loading once storage is mounted (Options.Settle). App Engine (and a
// pantavisor that is not PID 1) needs none. The steps to storage go to
// boot's timeline.
func prepareFor(log *slog.Logger, boot *boottime.Timeline) (prepare func(context.Context, pantavisor.Mode, func(config.Key) string) error, settle func()) {
	var mods *initrdModules
	settle = func() { mods.stop() }
	prepare = func(ctx context.Context, mode pantavisor.Mode, get func(config.Key) string) error {
		if mode == pantavisor.AppEngine || os.Getpid() != 1 {
			return nil
		}
		boot.MarkIn("storage", "prepare")
		fstype := get(config.StorageFSType)
		if fstype == "" {
			fstype = "ext4"
		}
		dev := get(config.StorageDevice)
		// the kernel file systems are mounted already (pid1Mounts)
		mods = startInitrdModules(ctx, log, "fs-"+fstype)
		boot.MarkIn("storage", "modules")
		// The rest of the listed modules once storage is mounted (or
		// not): until then they would only compete for the CPU.
		defer mods.rest()
		if get(config.SystemDriversLoadEarlyAuto) == "1" {
			loadEarly(log, get(config.StorageFSType))
		}
		modprobePath(log, "/")
		go embedded.Reap(ctx, log)
		if get(config.SystemMountSecurityFS) == "1" {
			if err := embedded.SecurityFS.Do(); err != nil {
				log.Warn("PV_SYSTEM_MOUNT_SECURITYFS", "err", err)
			}
		}
		if dev == "" {
			mods.wait() // storage already in place (e.g. in the initrd)
			return nil
		}
		wait, _ := strconv.Atoi(get(config.StorageWait))
		if wait <= 0 {
			wait = 5
		}
		path, err := embedded.WaitDevice(ctx, dev, time.Duration(wait)*time.Second)
		if err != nil && ctx.Err() == nil && mods.loading() {
			// PV_STORAGE_WAIT counts from the end of the initrd's loads,
			// as when they came first: a slow board may still be at them.
			mods.wait()
			path, err = embedded.WaitDevice(ctx, dev, time.Duration(wait)*time.Second)
		}
		if err != nil {
			mods.wait() // what they logged tells why
			return fmt.Errorf("storage %s: %w", dev, err)
		}
		boot.MarkIn("storage", "device")
		// The file system's module, if the initrd has it: loaded by now
		// or waited for.
		mods.need("fs-" + fstype)
		boot.MarkIn("storage", "fs")
		// Autogrow (upstream pv_e2fsgrow) grows an ext4 storage that is the
		// last partition to the end of its disk, first boot only.
		grow := &embedded.Autogrow{Dev: path, Off: embedded.AutogrowOff(procCmdline()), Log: log}
		if fstype == "ext4" {
			grow.Partition()
		}
		m := embedded.Mount{Source: path, Target: get(config.StorageMntPoint), FSType: fstype, Data: get(config.StorageOpts)}
		if err := m.Do(); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		if fstype == "ext4" {
			grow.FileSystem(m.Target)
		}
		return nil
	}
	return prepare, settle
}

// procCmdline is the kernel command line ("" when unreadable).
func procCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
}

// initrdModules loads from the initrd's /lib/modules/<release> what
// /etc/modules-load.d lists, enough to reach storage: the device drivers
// only for the devices present (coldplug) and, until stop (the BSP's
// modules take over), for the devices that appear meanwhile (a SCSI
// disk behind AHCI, a USB stick): a PC image lists the drivers of every
// storage controller it may meet, and loading all of them costs seconds
// on a slow CPU. The drivers and the storage file system's module load
// side by side in the background, the other listed modules (loop,
// squashfs for the BSP) once storage is mounted or the drivers are in,
// whichever comes first (rest): storage is mounted as soon as its device
// appears, while AHCI may still probe its links.
type initrdModules struct {
	l       *kmod.Loader
	log     *slog.Logger
	loaded  chan struct{} // closed once the listed modules and coldplug are done
	cancel  context.CancelFunc
	hotplug chan struct{} // closed once hotplug ended
	others  chan struct{} // closed by rest
	release sync.Once
}

// startInitrdModules starts loading the initrd's drivers and the module
// fs (the storage's file system); nil when there are no modules (all
// its methods accept nil).
func startInitrdModules(ctx context.Context, log *slog.Logger, fs string) *initrdModules {
	rel, err := embedded.KernelRelease()
	if err != nil {
		log.Warn("modules", "err", err)
		return nil
	}
	names, err := kmod.ReadModuleLists("/etc/modules-load.d")
	if err != nil || len(names) == 0 {
		return nil
	}
	idx, err := kmod.Open(filepath.Join("/lib/modules", rel))
	if err != nil {
		log.Warn("modules", "err", err)
		return nil
	}
	l := kmod.NewLoader(idx, log)
	l.UseCmdline(procCmdline())
	l.Parallel = true
	l.Jobs = runtime.NumCPU() + 1
	var others []string
	drivers := 0
	for _, n := range names {
		if idx.DeviceDriver(n) {
			drivers++
		} else {
			others = append(others, n)
		}
	}
	// A module's load ends by waiting for all the kernel's asynchronous
	// work, AHCI's link probing included, unless it asked for async
	// probing: the modules that drive no device (the file system's,
	// loop…) ask, so that storage need not wait for AHCI.
	var plain []string
	for _, n := range append([]string{fs}, others...) {
		if ms, builtin, err := idx.Lookup(n); err == nil && !builtin {
			plain = append(plain, ms...)
		}
	}
	for _, f := range idx.Plan(plain) {
		if n := kmod.Name(f); !idx.DeviceDriver(n) {
			l.Params[n] = append(l.Params[n], "async_probe")
		}
	}
	// Subscribed before coldplug: no device falls in between.
	events, err := kmod.OpenUevents()
	if err != nil {
		log.Warn("modules: no hotplug in the initrd", "err", err)
	}
	m := &initrdModules{l: l, log: log, loaded: make(chan struct{}), hotplug: make(chan struct{}), others: make(chan struct{})}
	hctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	go func() {
		defer close(m.hotplug)
		if events == nil {
			return
		}
		// Beside coldplug: virtio_blk loads as soon as virtio_pci's
		// devices appear.
		if err := l.Hotplug(hctx, events); err != nil && hctx.Err() == nil {
			log.Warn("modules: initrd hotplug ended", "err", err)
		}
	}()
	go func() {
		defer close(m.loaded)
		// The initrd's index holds only the listed modules (and what
		// they need): coldplug loads the listed drivers of the devices
		// present; the file system's module beside it.
		var loaded []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.need(fs)
			<-m.others
			var err error
			if loaded, err = l.LoadAll(others); err != nil {
				log.Warn("modules", "err", err)
			}
		}()
		plugged, err := l.Coldplug()
		if err != nil {
			log.Warn("modules", "err", err)
		}
		// The drivers are in and storage is not mounted yet: its device
		// may need a listed module that drives none (dm, ubi…).
		m.rest()
		<-done
		log.Info(fmt.Sprintf("kmod: initrd loaded %d modules (%d for the devices present; %d drivers listed)", len(loaded)+len(plugged), len(plugged), drivers))
	}()
	return m
}

// need loads module or alias name from the initrd if it has it (or
// waits for its load in flight); nothing when it does not.
func (m *initrdModules) need(name string) {
	if m == nil {
		return
	}
	if _, err := m.l.Probe(name, "", false); err != nil && !errors.Is(err, kmod.ErrNotFound) {
		m.log.Warn("modules", "module", name, "err", err)
	}
}

// loading reports whether loads are still running.
func (m *initrdModules) loading() bool {
	if m == nil {
		return false
	}
	select {
	case <-m.loaded:
		return false
	default:
		return true
	}
}

// rest lets the listed modules that are not drivers load.
func (m *initrdModules) rest() {
	if m != nil {
		m.release.Do(func() { close(m.others) })
	}
}

// wait returns once the listed modules and the coldplug are done.
func (m *initrdModules) wait() {
	if m != nil {
		m.rest()
		<-m.loaded
	}
}

// stop waits for the loads and ends hotplug.
func (m *initrdModules) stop() {
	if m == nil {
		return
	}
	m.wait()
	m.cancel()
	<-m.hotplug
}

// loadEarly is PV_SYSTEM_DRIVERS_LOAD_EARLY_AUTO: before storage is
// mounted, the storage file system's module and the drivers of the
// devices present (coldplug) from the initrd's modules, as upstream's
// modprobe of PV_STORAGE_FSTYPE and "mdev -s".
func loadEarly(log *slog.Logger, fstype string) {
	rel, err := embedded.KernelRelease()
	if err != nil {
		log.Warn("early drivers", "err", err)
		return
	}
	idx, err := kmod.Open(filepath.Join("/lib/modules", rel))
	if err != nil {
		log.Warn("early drivers", "err", err)
		return
	}
	l := kmod.NewLoader(idx, log)
	l.UseCmdline(procCmdline())
	if fstype != "" {
		if _, err := l.Probe("fs-"+fstype, "", false); err != nil {
			log.Warn("early drivers: storage file system", "fstype", fstype, "err", err)
		}
	}
	loaded, err := l.Coldplug()
	if err != nil {
		log.Warn("early drivers: coldplug", "err", err) // the initrd lacks some: expected
	}
	log.Info(fmt.Sprintf("kmod: early coldplug loaded %d modules", len(loaded)))
}

// modprobePath points the kernel's request_module at the modprobe applet
// when the initrd has it as /usr/bin/modprobe but not at the kernel's
// default /sbin/modprobe.
func modprobePath(log *slog.Logger, root string) {
	if _, err := os.Stat(filepath.Join(root, "sbin/modprobe")); err == nil {
		return
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/modprobe")); err != nil {
		return
	}
	if err := os.WriteFile(filepath.Join(root, "proc/sys/kernel/modprobe"), []byte("/usr/bin/modprobe\n"), 0o644); err != nil {
		log.Warn("modprobe path", "err", err)
	}
}

// systemReboot reboots or powers off the machine (embedded mode).
func systemReboot(poweroff bool) error {
	if poweroff {
		return embedded.Reboot(embedded.PowerOff)
	}
	return embedded.Reboot(embedded.Restart)
}

// sysctlRoot is where the daemon applies PV_SYSCTL_* keys: /proc/sys when
// this process is the device's init, nowhere otherwise.
func sysctlRoot() string {
	if os.Getpid() != 1 {
		return ""
	}
	return config.SysctlRoot
}
