package pantavisor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

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

// Kmsg is the kernel log device PV_LOG_CAPTURE_DMESG reads.
const Kmsg = "/dev/kmsg"

// kmsgSubscriber is the log server's /dev/kmsg reader (runtime/logserver).
type kmsgSubscriber interface {
	SubscribeKmsg(r io.Reader, consoleLoglevel int)
}

// captureDmesg logs the kernel's messages, from the oldest one the ring
// buffer still holds, as pantavisor/dmesg (PV_LOG_CAPTURE_DMESG). Only
// the device's own kernel: App Engine leaves the host's alone.
func (d *Daemon) captureDmesg(path string) {
	ks, ok := d.logs.(kmsgSubscriber)
	if d.mode == AppEngine || !ok || !d.conf.Bool(config.LogCaptureDmesg) {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		d.log.Warn("dmesg capture", "err", err)
		return
	}
	// On a device pantavisor's stdout is the kernel's console: the kernel
	// records it printed there already are not printed again.
	ks.SubscribeKmsg(kmsgReader{f}, consoleLoglevel(filepath.Join(config.SysctlRoot, "kernel", "printk")))
}

// consoleLoglevel reads the kernel's console_loglevel, the first field of
// path (kernel/printk); 0 when unknown, as if the console had nothing.
func consoleLoglevel(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// kmsgReader reads /dev/kmsg across EPIPE, which only says that records
// were overwritten before we read them: the next read continues with the
// oldest one left.
type kmsgReader struct{ f *os.File }

func (k kmsgReader) Read(p []byte) (int, error) {
	for {
		n, err := k.f.Read(p)
		if errors.Is(err, syscall.EPIPE) {
			continue
		}
		return n, err
	}
}

// Close lets the log server stop the reader.
func (k kmsgReader) Close() error { return k.f.Close() }
