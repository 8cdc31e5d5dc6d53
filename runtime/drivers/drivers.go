// Package drivers manages the drivers a BSP offers (bsp/drivers.json,
// driver-aliases@1) and containers reference (run.json "drivers"): it
// resolves an alias to its module lines for this board, substitutes
// ${user-meta:KEY} and ${device-meta:KEY}, loads the modules through a
// Kernel (runtime/kmod in the daemon) and unloads them when no container
// holds the alias any more.
//
//	m := drivers.New(drivers.Options{Kernel: drivers.Kmod(dir, "/sys", nil, log), Meta: meta, Log: log})
//	m.SetRevision(st.Drivers(), drivers.Sections(cmdline, fitconfig))
//	err := m.Ensure("wifi-app", p.Drivers)   // before the container starts
//	err = m.Manual("wifi-app", p.Drivers, "wifi", true) // PUT /drivers/wifi/load
//	m.Release("wifi-app")                   // it stopped
//	st := m.Status(p.Drivers)                // GET /drivers
//
// Ensure is the one call the container start needs ("the required and
// optional drivers of container X"): it may run in any goroutine, beside
// other containers' starts; the Manager serialises module operations.
package drivers

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Errors callers map to responses.
var (
	// ErrNotOffered: the BSP defines no such alias (a required one fails
	// the container's start).
	ErrNotOffered = errors.New("driver not offered by the BSP")
	// ErrNotManual: the container does not list the alias as manual.
	ErrNotManual = errors.New("driver not referenced as manual by the container")
	// ErrNoKernel: no module directory to load from.
	ErrNoKernel = errors.New("no kernel modules available")
)

// Status values of GET /drivers.
const (
	Loaded   = "LOADED"
	Unloaded = "UNLOADED"
	Unknown  = "UNKNOWN"
)

// Kernel loads and unloads modules, as modprobe and modprobe -r do.
type Kernel interface {
	Load(module, params string) error
	Unload(module string) error
	Loaded(module string) bool
}

// Meta reads a metadata value: kind is "user-meta" or "device-meta".
type Meta func(kind, key string) (string, bool)

// Options configure a Manager.
type Options struct {
	Kernel Kernel // nil: every load fails with ErrNoKernel
	// Pending, when set, returns a channel closed once the Kernel's
	// modules are in place (the BSP's image is mounted beside the
	// container start), or nil when they are not pending: loads wait
	// for it, outside the Manager's lock.
	Pending func() <-chan struct{}
	Meta    Meta // nil: every reference expands to ""
	Log     *slog.Logger
}

// Manager owns which container holds which alias. Its methods are safe
// for concurrent use; module loads are serialised under its mutex, which
// guards nothing else.
type Manager struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	aliases  *state.Drivers
	sections []string
	holders  map[string]map[string]bool // alias → containers holding it
}

// New returns a Manager with no aliases until SetRevision.
func New(o Options) *Manager {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, log: log, holders: map[string]map[string]bool{}}
}

// Sections are the board-specific sections of bsp/drivers.json that win
// over "all", most specific first: "fitconfig:<PV_BOOTLOADER_FITCONFIG>"
// (upstream's runtime), "dtb:<pv_bootloader.dtb>" and
// "ovl:<pv_bootloader.ovl>" from the kernel command line (the documented
// ones).
func Sections(cmdline, fitconfig string) []string {
	var s []string
	if fitconfig != "" {
		s = append(s, "fitconfig:"+fitconfig)
	}
	for _, w := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		switch {
		case v == "":
		case k == "pv_bootloader.dtb":
			s = append(s, "dtb:"+v)
		case k == "pv_bootloader.ovl":
			for _, o := range strings.Split(v, ",") {
				if o != "" {
					s = append(s, "ovl:"+o)
				}
			}
		}
	}
	return s
}

// SetRevision takes the aliases of a newly loaded revision. Holds carry
// over: containers kept across a transition keep their drivers.
func (m *Manager) SetRevision(d *state.Drivers, sections []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.aliases, m.sections = d, sections
}

// Ensure loads the required and optional drivers of container, in order.
// A required alias the BSP lacks or whose modules do not load is an
// error (the container must not start); optional ones are best effort.
func (m *Manager) Ensure(container string, refs state.DriverRefs) error {
	if len(refs.Required)+len(refs.Optional) > 0 {
		m.waitPending()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range refs.Required {
		if err := m.loadLocked(container, a); err != nil {
			return fmt.Errorf("required driver %q: %w", a, err)
		}
	}
	for _, a := range refs.Optional {
		if err := m.loadLocked(container, a); err != nil {
			m.log.Warn("drivers: optional driver not loaded", "container", container, "driver", a, "err", err)
		}
	}
	return nil
}

// Manual loads (or unloads) a manual driver of container; name "" means
// all of them. Loading stops at the first error; unloading tries all.
func (m *Manager) Manual(container string, refs state.DriverRefs, name string, load bool) error {
	names := refs.Manual
	if name != "" {
		if !slices.Contains(refs.Manual, name) {
			return fmt.Errorf("%q: %w", name, ErrNotManual)
		}
		names = []string{name}
	}
	if load {
		m.waitPending()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var first error
	for _, a := range names {
		if load {
			if err := m.loadLocked(container, a); err != nil {
				return fmt.Errorf("driver %q: %w", a, err)
			}
			continue
		}
		if err := m.dropLocked(container, a); err != nil && first == nil {
			first = fmt.Errorf("driver %q: %w", a, err)
		}
	}
	return first
}

// waitPending returns once the modules are in place (Options.Pending).
func (m *Manager) waitPending() {
	if m.o.Pending == nil {
		return
	}
	if p := m.o.Pending(); p != nil {
		<-p
	}
}

// Release drops every hold of container (it stopped) and unloads the
// aliases nobody holds any more.
func (m *Manager) Release(container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var held []string
	for a, hs := range m.holders {
		if hs[container] {
			held = append(held, a)
		}
	}
	slices.Sort(held)
	for _, a := range held {
		if err := m.dropLocked(container, a); err != nil {
			m.log.Warn("drivers: unload", "container", container, "driver", a, "err", err)
		}
	}
}

// DriverStatus is one driver of a container, for GET /drivers.
type DriverStatus struct {
	Name, Type, Status string
}

// Status reports each driver refs names: LOADED when every module of the
// alias is in the kernel, UNLOADED when one is not, UNKNOWN when the BSP
// does not offer it.
func (m *Manager) Status(refs state.DriverRefs) []DriverStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DriverStatus
	for _, l := range []struct {
		typ   string
		names []string
	}{{"REQUIRED", refs.Required}, {"OPTIONAL", refs.Optional}, {"MANUAL", refs.Manual}} {
		for _, a := range l.names {
			out = append(out, DriverStatus{Name: a, Type: l.typ, Status: m.statusLocked(a)})
		}
	}
	return out
}

func (m *Manager) statusLocked(alias string) string {
	lines, ok := m.aliases.Lookup(alias, m.sections...)
	if !ok {
		return Unknown
	}
	if m.o.Kernel == nil {
		return Unloaded
	}
	for _, l := range lines {
		mod, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		if !m.o.Kernel.Loaded(mod) {
			return Unloaded
		}
	}
	return Loaded
}

// loadLocked loads alias for container and records the hold.
func (m *Manager) loadLocked(container, alias string) error {
	lines, ok := m.aliases.Lookup(alias, m.sections...)
	if !ok {
		return ErrNotOffered
	}
	if m.o.Kernel == nil {
		return ErrNoKernel
	}
	for _, l := range lines {
		mod, params, err := Expand(l, m.o.Meta)
		if err != nil {
			return err
		}
		if err := m.o.Kernel.Load(mod, params); err != nil {
			return fmt.Errorf("modprobe %s: %w", mod, err)
		}
	}
	if m.holders[alias] == nil {
		m.holders[alias] = map[string]bool{}
	}
	m.holders[alias][container] = true
	m.log.Info("drivers: loaded", "driver", alias, "container", container)
	return nil
}

// dropLocked removes container's hold on alias and, when it was the
// last, unloads its modules in reverse order, keeping those another held
// alias uses.
func (m *Manager) dropLocked(container, alias string) error {
	hs := m.holders[alias]
	if !hs[container] {
		return nil
	}
	delete(hs, container)
	if len(hs) > 0 {
		return nil
	}
	delete(m.holders, alias)
	lines, ok := m.aliases.Lookup(alias, m.sections...)
	if !ok || m.o.Kernel == nil {
		return nil
	}
	inUse := map[string]bool{}
	for other := range m.holders {
		ls, _ := m.aliases.Lookup(other, m.sections...)
		for _, l := range ls {
			mod, _, _ := strings.Cut(strings.TrimSpace(l), " ")
			inUse[mod] = true
		}
	}
	var first error
	for i := len(lines) - 1; i >= 0; i-- {
		mod, _, _ := strings.Cut(strings.TrimSpace(lines[i]), " ")
		if inUse[mod] {
			continue
		}
		if err := m.o.Kernel.Unload(mod); err != nil && first == nil {
			first = fmt.Errorf("modprobe -r %s: %w", mod, err)
		}
	}
	m.log.Info("drivers: unloaded", "driver", alias, "container", container)
	return first
}
