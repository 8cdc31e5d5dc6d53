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
	"sync"
	"time"
)

// Loader loads the modules of one Index and remembers what it loaded.
// Its methods are safe for concurrent use once its fields are set: a
// module another goroutine is loading is waited for, not loaded twice.
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
	// With Parallel it is called from several goroutines.
	OnLoad func(name string)
	// Parallel makes Coldplug and LoadAll load each module (with its
	// dependencies, in order) beside the others, and Coldplug look for
	// new devices as soon as any load ends: a driver whose probe waits
	// (AHCI for its links) no longer holds up the disk's.
	Parallel bool
	// Jobs bounds the loads in flight with Parallel (0: no bound): on
	// one CPU, loads that only compete for it delay the disk's driver;
	// one more than the CPUs keeps a driver that waits (AHCI) from
	// holding the others up. Waiting loads start in the order they came.
	Jobs int

	load     func(path, params string) error
	jobsOnce sync.Once
	jobs     chan struct{}

	mu   sync.Mutex
	done map[string]bool
	busy map[string]chan struct{} // loads in flight, closed when they end
}

// NewLoader returns a Loader of idx that loads with finit_module(2),
// looking at /sys. log may be nil.
func NewLoader(idx *Index, log *slog.Logger) *Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loader{idx: idx, log: log, Sys: "/sys", Params: map[string][]string{},
		Blacklist: map[string]bool{}, load: finit, done: map[string]bool{}, busy: map[string]chan struct{}{}}
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
	if l.Parallel {
		return l.loadSideBySide(mods)
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
			l.mu.Lock()
			delete(l.done, m)
			l.mu.Unlock()
		}
	}
	return first
}

// loaded reports whether the kernel already has module name.
func (l *Loader) loaded(name string) bool {
	l.mu.Lock()
	done := l.done[name]
	l.mu.Unlock()
	return done || l.inKernel(name)
}

// inKernel reports whether sysfs shows module name.
func (l *Loader) inKernel(name string) bool {
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
		now, err := l.loadFile(file, explicit[name])
		if now {
			loaded = append(loaded, name)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return loaded, first
}

// loadFile loads one module file unless the kernel has it; a load of
// the same module in flight in another goroutine is waited for instead
// (then tried again if it failed). It reports whether this call loaded
// it.
func (l *Loader) loadFile(file, explicit string) (bool, error) {
	name := Name(file)
	l.mu.Lock()
	for {
		if l.done[name] {
			l.mu.Unlock()
			return false, nil
		}
		ch, ok := l.busy[name]
		if !ok {
			break
		}
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
	}
	ch := make(chan struct{})
	l.busy[name] = ch
	l.mu.Unlock()
	now, done, err := l.loadNow(file, explicit)
	l.mu.Lock()
	delete(l.busy, name)
	if done {
		l.done[name] = true
	}
	l.mu.Unlock()
	close(ch)
	if done && !errors.Is(err, errNotApplicable) {
		l.onLoad(name)
	}
	if errors.Is(err, errNotApplicable) {
		err = nil
	}
	return now, err
}

// errNotApplicable marks a module that refused the hardware here.
var errNotApplicable = errors.New("not applicable")

// loadNow loads the module file (one load of it at a time): loaded
// reports whether it did, done whether the module is settled (in the
// kernel, or not applicable here: errNotApplicable).
func (l *Loader) loadNow(file, explicit string) (loaded, done bool, err error) {
	name := Name(file)
	if l.inKernel(name) {
		return false, false, nil
	}
	params := strings.Join(append(append([]string(nil), l.Params[name]...), strings.Fields(explicit)...), " ")
	if l.Parallel && l.Jobs > 0 {
		l.jobsOnce.Do(func() { l.jobs = make(chan struct{}, l.Jobs) })
		l.jobs <- struct{}{}
		defer func() { <-l.jobs }()
	}
	err = l.load(filepath.Join(l.idx.Dir, file), params)
	switch {
	case err == nil:
		return true, true, nil
	case isExist(err):
		return false, true, nil
	case isNotApplicable(err):
		// Like modprobe: a driver for hardware that is not there.
		// Debug: coldplug meets several (cpufreq drivers on a VM).
		l.log.Debug("kmod: module not applicable here", "module", name, "err", err)
		return false, true, errNotApplicable
	default:
		l.log.Warn("kmod: load module", "module", name, "err", err)
		return false, false, fmt.Errorf("load module %s: %w", name, err)
	}
}

// loadSideBySide loads each of mods, with its dependencies in order, in
// a goroutine of its own, and returns once all are done; what two of
// them share is loaded once (loadFile).
func (l *Loader) loadSideBySide(mods []string) (loaded []string, first error) {
	res := make(chan loadResult)
	for _, m := range mods {
		go l.loadRoot(m, res)
	}
	for range mods {
		r := <-res
		loaded = append(loaded, r.loaded...)
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	return loaded, first
}

type loadResult struct {
	loaded []string
	err    error
}

// loadRoot loads module m and its dependencies, then sends the outcome.
func (l *Loader) loadRoot(m string, res chan<- loadResult) {
	got, err := l.loadFiles(l.idx.Plan([]string{m}), nil)
	res <- loadResult{got, err}
}

// Coldplug loads the drivers of the devices present: it matches every
// /sys/bus/*/devices/*/modalias and /sys/class/*/*/modalias against
// modules.alias and loads what
// matches (blacklisted modules aside), again while that makes new devices
// appear (virtio_pci brings up the virtio devices virtio_net drives). It
// logs one summary line and returns the modules it loaded.
func (l *Loader) Coldplug() (loaded []string, first error) {
	start := time.Now()
	if l.Parallel {
		loaded, first = l.coldplugSideBySide()
	} else {
		loaded, first = l.coldplugPasses()
	}
	l.log.Info(fmt.Sprintf("kmod: coldplug loaded %d modules: %s", len(loaded), strings.Join(loaded, " ")),
		"took", time.Since(start).Round(time.Millisecond))
	return loaded, first
}

// coldplugDrivers returns the drivers of the devices present that are
// neither blacklisted nor in tried, in coldplugRank order; it adds them
// to tried.
func (l *Loader) coldplugDrivers(tried map[string]bool) []string {
	var mods []string
	for _, a := range l.modaliases() {
		for _, m := range l.idx.LookupAlias(a) {
			if !tried[m] && !l.Blacklist[m] {
				tried[m] = true
				mods = append(mods, m)
			}
		}
	}
	slices.SortStableFunc(mods, func(a, b string) int { return l.coldplugRank(a) - l.coldplugRank(b) })
	return mods
}

// coldplugRank orders a coldplug: watchdog drivers first (Pantavisor arms
// every watchdog as it appears, and the rest of a coldplug can take
// seconds during which a hang would go unnoticed), then network drivers
// (the network container, the Hub and ssh wait for the NIC, while a DRM
// stack alone takes ~0.7 s to load under QEMU TCG), then the rest.
func (l *Loader) coldplugRank(name string) int {
	file := l.idx.Deps.File[Name(name)]
	switch {
	case strings.Contains(file, "/drivers/watchdog/"):
		return 0
	case strings.Contains(file, "/drivers/net/"):
		return 1
	}
	return 2
}

// coldplugSideBySide starts every driver's load in a goroutine and,
// whenever one loaded something, looks for the devices it brought up.
func (l *Loader) coldplugSideBySide() (loaded []string, first error) {
	tried := map[string]bool{}
	res := make(chan loadResult)
	running := 0
	scan := func() {
		for _, m := range l.coldplugDrivers(tried) {
			running++
			go l.loadRoot(m, res)
		}
	}
	scan()
	for running > 0 {
		r := <-res
		running--
		loaded = append(loaded, r.loaded...)
		if r.err != nil && first == nil {
			first = r.err
		}
		if len(r.loaded) > 0 {
			scan()
		}
	}
	return loaded, first
}

// coldplugPasses loads the drivers in passes, one module at a time.
func (l *Loader) coldplugPasses() (loaded []string, first error) {
	tried := map[string]bool{}
	for pass := 0; pass < 4; pass++ {
		mods := l.coldplugDrivers(tried)
		if len(mods) == 0 {
			break
		}
		got, err := l.loadFiles(l.idx.Plan(mods), nil)
		loaded = append(loaded, got...)
		if err != nil && first == nil {
			first = err
		}
		if len(got) == 0 {
			break
		}
	}
	return loaded, first
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
