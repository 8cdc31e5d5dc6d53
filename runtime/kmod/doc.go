// Package kmod loads Linux kernel modules the way modprobe(8) does, in pure
// Go: it reads a module directory's modules.dep, modules.alias,
// modules.builtin (plus modules.builtin.modinfo and modules.softdep when
// present), resolves a module name or an alias (fs-overlay, net-pf-10, a
// device modalias) to the modules to load, dependencies first, and loads
// them with finit_module(2).
//
//	idx, err := kmod.Open("/lib/modules/" + release)
//	l := kmod.NewLoader(idx, log)
//	loaded, err := l.Probe("fs-overlay", "")       // modprobe fs-overlay
//	n, err := l.LoadAll([]string{"virtio_blk", "ext4"})
//	ev, _ := kmod.OpenUevents()                     // before Coldplug
//	loaded, err = l.Coldplug()                      // drivers for present devices
//	go l.Hotplug(ctx, ev)                           // and for devices added later
//
// Modprobe is the multi-call applet the kernel's request_module runs as
// /sbin/modprobe. ReadModuleLists reads modules-load.d style lists.
//
// Only the standard library and golang.org/x/sys/unix are used: this code
// runs in PID 1 before storage is mounted.
package kmod
