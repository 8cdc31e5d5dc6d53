package pantavisor

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

// coldplugNice is the nice value of the thread that coldplugs: module
// initialisation (DRM, input, watchdog…) runs in the loading thread, so
// on a slow CPU it yields to the container start it runs beside.
const coldplugNice = 10

// coldplug is the BSP's driver loading, which runs beside the container
// start instead of before it. It is the one hook point for "wait for
// coldplug" and "wait for driver X": a container that needs a driver
// (a managed driver's `required` list) calls WaitModules with the
// modules it needs, and only that container waits.
type coldplug struct {
	sys  string        // sysfs, to see modules loaded before (initrd)
	done chan struct{} // closed when the first coldplug finished

	mu      sync.Mutex
	loaded  map[string]bool
	changed chan struct{} // closed and replaced on every load
}

func newColdplug(sys string) *coldplug {
	return &coldplug{sys: sys, done: make(chan struct{}), loaded: map[string]bool{}, changed: make(chan struct{})}
}

// loadedModule is the Loader's OnLoad: it wakes the waiters.
func (c *coldplug) loadedModule(name string) {
	c.mu.Lock()
	c.loaded[name] = true
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// run coldplugs with l at a lowered priority, then hotplugs with events
// (nil: no hotplug) for the rest of the boot.
func (c *coldplug) run(l *kmod.Loader, events kmod.UeventSource, warn func(msg string, args ...any)) {
	// The priority is per thread: keep this goroutine on its own thread
	// for good (it lives as long as the boot with hotplug anyway).
	runtime.LockOSThread()
	if err := lowerThreadPriority(coldplugNice); err != nil {
		warn("bsp: coldplug priority", "err", err)
	}
	if _, err := l.Coldplug(); err != nil {
		warn("bsp: coldplug", "err", err)
	}
	close(c.done)
	if events == nil {
		return
	}
	if err := l.Hotplug(context.Background(), events); err != nil {
		warn("bsp: hotplug ended", "err", err)
	}
}

// Done is closed once the first coldplug has finished.
func (c *coldplug) Done() <-chan struct{} { return c.done }

// WaitModules returns once every module of names (canonical or not) is
// in the kernel or coldplug has finished without loading it (it is then
// not there to wait for: the device is absent or the driver is built
// in), or ctx ends. A nil coldplug (no BSP modules) waits for nothing.
func (c *coldplug) WaitModules(ctx context.Context, names ...string) error {
	if c == nil {
		return nil
	}
	for {
		c.mu.Lock()
		changed := c.changed
		missing := false
		for _, n := range names {
			n = kmod.Name(n)
			if !c.loaded[n] && !c.inKernel(n) {
				missing = true
				break
			}
		}
		c.mu.Unlock()
		if !missing {
			return nil
		}
		select {
		case <-c.done:
			return nil
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inKernel reports whether sysfs shows module name (loaded before the
// coldplug, by the initrd, or built in with parameters).
func (c *coldplug) inKernel(name string) bool {
	if c.sys == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(c.sys, "module", name))
	return err == nil
}
