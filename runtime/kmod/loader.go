package kmod

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Loader loads the modules of one Index and remembers what it loaded. It
// is not safe for concurrent use.
type Loader struct {
	idx *Index
	log *slog.Logger
	// Sys is where sysfs is mounted: /sys/module/<name>/initstate marks a
	// module as already loaded, /sys/bus/*/devices/*/modalias lists the
	// devices Coldplug drives. Empty means nothing counts as loaded.
	Sys string
	// Params holds per-module parameters from the kernel command line
	// ("<module>.<param>=<value>"), see UseCmdline.
	Params map[string][]string
	// Blacklist holds modules Coldplug (and Probe with blacklist) skips:
	// the kernel command line's modprobe.blacklist=.
	Blacklist map[string]bool
	// OnLoad, if set, is told each module the kernel now has (loaded
	// here, or found loaded already): waiters for a driver watch it.
	OnLoad func(name string)

	load func(path, params string) error
	done map[string]bool
}

// NewLoader returns a Loader of idx that loads with finit_module(2),
// looking at /sys. log may be nil.
func NewLoader(idx *Index, log *slog.Logger) *Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loader{idx: idx, log: log, Sys: "/sys", Params: map[string][]string{},
		Blacklist: map[string]bool{}, load: finit, done: map[string]bool{}}
}

// UseCmdline takes module parameters ("<module>.<param>=<value>") and
// modprobe.blacklist=<a,b> from a kernel command line, as modprobe does.
func (l *Loader) UseCmdline(cmdline string) {
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		mod, param, ok := strings.Cut(k, ".")
		if !ok || mod == "" || param == "" {
			continue
		}
		if mod == "modprobe" && param == "blacklist" {
			for _, b := range strings.Split(v, ",") {
				if b != "" {
					l.Blacklist[Name(b)] = true
				}
			}
			continue
		}
		mod = Name(mod)
		l.Params[mod] = append(l.Params[mod], param+"="+v)
	}
}

// Probe loads the module or alias name with its dependencies, like
// `modprobe name params`; params go to the module(s) name stands for.
// With blacklist, blacklisted modules an alias resolves to are skipped
// (modprobe -b). A built-in module is done at once. It returns the
// modules it loaded.
func (l *Loader) Probe(name, params string, blacklist bool) ([]string, error) {
	mods, builtin, err := l.idx.Lookup(name)
	if err != nil || builtin {
		return nil, err
	}
	if blacklist {
		var keep []string
		for _, m := range mods {
			if !l.Blacklist[m] {
				keep = append(keep, m)
			}
		}
		if len(keep) == 0 {
			return nil, fmt.Errorf("%s: blacklisted", name)
		}
		mods = keep
	}
	explicit := map[string]string{}
	for _, m := range mods {
		explicit[m] = params
	}
	return l.loadFiles(l.idx.Plan(mods), explicit)
}

// LoadAll loads names (modules or aliases, as in modules-load.d) and their
// dependencies. Names that are not found are logged, not errors (a list
// may name modules a kernel builds in). The first load failure is
// returned after trying all of them.
func (l *Loader) LoadAll(names []string) (loaded []string, err error) {
	var mods []string
	for _, n := range names {
		ms, builtin, err := l.idx.Lookup(n)
		switch {
		case errors.Is(err, ErrNotFound):
			l.log.Warn("kmod: module not found", "module", n, "dir", l.idx.Dir)
		case builtin:
			l.log.Debug("kmod: built in", "module", n)
		default:
			mods = append(mods, ms...)
		}
	}
	return l.loadFiles(l.idx.Plan(mods), nil)
}

// Remove unloads the named modules (modprobe -r), without their
// dependencies.
func (l *Loader) Remove(names []string) error {
	var first error
	for _, n := range names {
		mods, builtin, err := l.idx.Lookup(n)
		if err == nil && builtin {
			err = fmt.Errorf("%s: built into the kernel", n)
		}
		if err != nil && first == nil {
			first = err
		}
		for _, m := range mods {
			if err := remove(m); err != nil {
				if first == nil {
					first = err
				}
				continue
			}
			delete(l.done, m)
		}
	}
	return first
}

// loaded reports whether the kernel already has module name.
func (l *Loader) loaded(name string) bool {
	if l.done[name] {
		return true
	}
	if l.Sys == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(l.Sys, "module", name, "initstate"))
	return err == nil
}

func (l *Loader) onLoad(name string) {
	if l.OnLoad != nil {
		l.OnLoad(name)
	}
}

// loadFiles loads files (relative to the index directory) in order,
// skipping what is loaded. explicit holds command-line parameters per
// module name.
func (l *Loader) loadFiles(files []string, explicit map[string]string) (loaded []string, first error) {
	for _, file := range files {
		name := Name(file)
		if l.loaded(name) {
			continue
		}
		params := strings.Join(append(append([]string(nil), l.Params[name]...), strings.Fields(explicit[name])...), " ")
		err := l.load(filepath.Join(l.idx.Dir, file), params)
		switch {
		case err == nil:
			l.done[name] = true
			loaded = append(loaded, name)
			l.onLoad(name)
		case isExist(err):
			l.done[name] = true
			l.onLoad(name)
		case isNotApplicable(err):
			// Like modprobe: a driver for hardware that is not there.
			l.done[name] = true
			// Debug: coldplug meets several (cpufreq drivers on a VM).
			l.log.Debug("kmod: module not applicable here", "module", name, "err", err)
		default:
			l.log.Warn("kmod: load module", "module", name, "err", err)
			if first == nil {
				first = fmt.Errorf("load module %s: %w", name, err)
			}
		}
	}
	return loaded, first
}

// Coldplug loads the drivers of the devices present: it matches every
// /sys/bus/*/devices/*/modalias and /sys/class/*/*/modalias against
// modules.alias and loads what
// matches (blacklisted modules aside), again while that makes new devices
// appear (virtio_pci brings up the virtio devices virtio_net drives). It
// logs one summary line and returns the modules it loaded.
func (l *Loader) Coldplug() (loaded []string, first error) {
	start := time.Now()
	tried := map[string]bool{}
	for pass := 0; pass < 4; pass++ {
		var mods []string
		for _, a := range l.modaliases() {
			for _, m := range l.idx.LookupAlias(a) {
				if !tried[m] && !l.Blacklist[m] {
					tried[m] = true
					mods = append(mods, m)
				}
			}
		}
		if len(mods) == 0 {
			break
		}
		// Watchdog drivers first: Pantavisor arms every watchdog as it
		// appears, and the rest of a coldplug (DRM…) can take seconds
		// during which a hang would go unnoticed.
		slices.SortStableFunc(mods, func(a, b string) int { return cmpWatchdog(l.watchdogDriver(a), l.watchdogDriver(b)) })
		got, err := l.loadFiles(l.idx.Plan(mods), nil)
		loaded = append(loaded, got...)
		if err != nil && first == nil {
			first = err
		}
		if len(got) == 0 {
			break
		}
	}
	l.log.Info(fmt.Sprintf("kmod: coldplug loaded %d modules: %s", len(loaded), strings.Join(loaded, " ")),
		"took", time.Since(start).Round(time.Millisecond))
	return loaded, first
}

// watchdogDriver reports whether module name is a watchdog driver (its
// file is under drivers/watchdog).
func (l *Loader) watchdogDriver(name string) bool {
	return strings.Contains(l.idx.Deps.File[Name(name)], "/drivers/watchdog/")
}

// cmpWatchdog orders watchdog drivers before the others.
func cmpWatchdog(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// modaliases returns the distinct device modaliases under l.Sys, sorted.
func (l *Loader) modaliases() []string {
	// Bus devices, and class devices (input, sound...) that are on no bus.
	paths, _ := filepath.Glob(filepath.Join(l.Sys, "bus", "*", "devices", "*", "modalias"))
	class, _ := filepath.Glob(filepath.Join(l.Sys, "class", "*", "*", "modalias"))
	paths = append(paths, class...)
	set := map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if a := strings.TrimSpace(string(b)); a != "" {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Loaded reports whether the module (or every module the alias stands
// for) is in the kernel; a built-in module is.
func (l *Loader) Loaded(name string) bool {
	mods, builtin, err := l.idx.Lookup(name)
	if err != nil {
		return l.loaded(Name(name))
	}
	if builtin {
		return true
	}
	for _, m := range mods {
		if !l.loaded(m) {
			return false
		}
	}
	return len(mods) > 0
}
