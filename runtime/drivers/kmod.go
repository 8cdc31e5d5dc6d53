package drivers

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

// Kmod is a Kernel over runtime/kmod for module directory dir (the BSP's
// modules on /lib/modules/<release>) and sysfs at sys. The index is read
// at the first use, once the BSP is mounted; an error then is returned by
// every load. pending (nil: never) is Options.Pending: while the modules
// are pending the index is not read (Load fails, Loaded is false), so
// the initrd's few modules on dir are never taken for the BSP's.
func Kmod(dir, sys string, pending func() <-chan struct{}, log *slog.Logger) Kernel {
	return &kmodKernel{dir: dir, sys: sys, pending: pending, log: log}
}

// errPending: the BSP's modules are not mounted yet.
var errPending = errors.New("kernel modules not mounted yet")

type kmodKernel struct {
	dir, sys string
	pending  func() <-chan struct{}
	log      *slog.Logger

	once sync.Once
	l    *kmod.Loader
	err  error
}

// loader opens the index once. The Manager serialises the calls, so the
// Loader (not safe for concurrent use) has one user at a time.
func (k *kmodKernel) loader() (*kmod.Loader, error) {
	if k.pending != nil {
		if p := k.pending(); p != nil {
			select {
			case <-p:
			default:
				return nil, errPending
			}
		}
	}
	k.once.Do(func() {
		idx, err := kmod.Open(k.dir)
		if err != nil {
			k.err = err
			return
		}
		k.l = kmod.NewLoader(idx, k.log)
		k.l.Sys = k.sys
	})
	return k.l, k.err
}

func (k *kmodKernel) Load(module, params string) error {
	l, err := k.loader()
	if err != nil {
		return err
	}
	_, err = l.Probe(module, params, false)
	return err
}

func (k *kmodKernel) Unload(module string) error {
	l, err := k.loader()
	if err != nil {
		return err
	}
	return l.Remove([]string{module})
}

func (k *kmodKernel) Loaded(module string) bool {
	l, err := k.loader()
	return err == nil && l.Loaded(module)
}
