package pantavisor

import (
	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// applySysctls writes the PV_SYSCTL_* keys (PV_SYSCTL_KERNEL_CORE_PATTERN
// and any other one set) below Options.SysctlRoot in INIT. Only the
// device's own init sets it: App Engine runs on a host whose kernel
// settings are not ours, and says so when a key was set on purpose.
func (d *Daemon) applySysctls() {
	if d.mode == AppEngine || d.opt.SysctlRoot == "" {
		for _, s := range d.conf.Sysctls(config.SysctlRoot) {
			if s.Key == config.SysctlKernelCorePattern.Name() && d.conf.Source(config.SysctlKernelCorePattern) == config.Default {
				continue // the shipped default: nothing was asked for
			}
			d.log.Info("sysctl not applied: only the device's init applies sysctls", "key", s.Key, "mode", d.mode)
		}
		return
	}
	if err := d.conf.ApplySysctls(d.opt.SysctlRoot); err != nil {
		d.log.Warn("sysctl", "err", err)
	}
}
