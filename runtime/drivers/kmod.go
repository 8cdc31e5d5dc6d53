package drivers

import (
	"log/slog"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

// Kmod is a Kernel over runtime/kmod for module directory dir (the BSP's
// modules on /lib/modules/<release>) and sysfs at sys. The index is read
// at the first use, once the BSP is mounted; an error then is returned by
// every load.
func Kmod(dir, sys string, log *slog.Logger) Kernel {
	return &kmodKernel{dir: dir, sys: sys, log: log}
}

type kmodKernel struct {
	dir, sys string
	log      *slog.Logger

	once sync.Once
	l    *kmod.Loader
	err  error
}

// loader opens the index once. The Manager serialises the calls, so the
// Loader (not safe for concurrent use) has one user at a time.
func (k *kmodKernel) loader() (*kmod.Loader, error) {
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
