package kmod

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound means a name is neither a module, a built-in module nor an
// alias of one.
var ErrNotFound = errors.New("module not found")

// Index is what modprobe knows about one module directory
// (/lib/modules/<release>).
type Index struct {
	// Dir is the module directory the files are relative to.
	Dir      string
	Deps     *Deps
	Builtin  map[string]bool
	Softdeps map[string]Softdep
	aliases  *aliasTable
	builtins *aliasTable // aliases of built-in modules
	devices  map[string]bool
}

// Open reads the index files of the module directory dir. modules.dep is
// required; modules.alias, modules.builtin, modules.builtin.modinfo and
// modules.softdep are read when present.
func Open(dir string) (*Index, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	deps, err := ParseDep(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("kmod: %s: %w", dir, err)
	}
	idx := &Index{Dir: dir, Deps: deps, Builtin: map[string]bool{}, Softdeps: map[string]Softdep{}}
	var aliases []Alias
	if err := readOptional(dir, "modules.alias", func(f *os.File) (err error) {
		aliases, err = ParseAlias(f)
		return err
	}); err != nil {
		return nil, err
	}
	idx.aliases = newAliasTable(aliases)
	idx.devices = map[string]bool{}
	for _, a := range aliases {
		if deviceAlias(a.Pattern) {
			idx.devices[a.Module] = true
		}
	}
	if err := readOptional(dir, "modules.builtin", func(f *os.File) (err error) {
		idx.Builtin, err = ParseBuiltin(f)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readOptional(dir, "modules.softdep", func(f *os.File) (err error) {
		idx.Softdeps, err = ParseSoftdep(f)
		return err
	}); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin.modinfo")); err == nil {
		idx.builtins = newAliasTable(ParseBuiltinModinfo(b))
	}
	return idx, nil
}

func readOptional(dir, name string, parse func(*os.File) error) error {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	if err := parse(f); err != nil {
		return fmt.Errorf("kmod: %s: %w", dir, err)
	}
	return nil
}

// Lookup returns the modules a name stands for, as modprobe resolves it: a
// module of modules.dep, else a built-in module (builtin true, nothing to
// load), else every module whose alias pattern matches, else a built-in
// module's alias. It fails with ErrNotFound.
func (x *Index) Lookup(name string) (mods []string, builtin bool, err error) {
	if n := Name(name); n != "" {
		if _, ok := x.Deps.File[n]; ok {
			return []string{n}, false, nil
		}
		if x.Builtin[n] {
			return nil, true, nil
		}
	}
	if mods := x.aliases.lookup(name); len(mods) > 0 {
		return mods, false, nil
	}
	if len(x.builtins.lookup(name)) > 0 {
		return nil, true, nil
	}
	return nil, false, fmt.Errorf("%s: %w", name, ErrNotFound)
}

// DeviceDriver reports whether module name drives devices a modalias
// names ("pci:…", "virtio:…", "scsi:…", "usb:…"): Coldplug and Hotplug
// load it when such a device is there. Other modules (file systems,
// loop, crypto) are only loaded when asked for.
func (x *Index) DeviceDriver(name string) bool { return x.devices[Name(name)] }

// deviceAlias reports whether an alias pattern matches device modaliases
// ("<bus>:…"); "devname:…" names a device node, not a device.
func deviceAlias(p string) bool {
	return strings.Contains(p, ":") && !strings.HasPrefix(p, "devname:")
}

// LookupAlias is Lookup for a device modalias: only alias patterns count
// (a device never names a module directly).
func (x *Index) LookupAlias(modalias string) []string {
	return x.aliases.lookup(modalias)
}

// Plan returns the files to load for the modules mods, relative to Dir:
// soft "pre" dependencies, hard dependencies, the module, soft "post"
// dependencies; each once. Soft dependencies may be aliases; those that
// do not exist or are built in are skipped, like modprobe does.
func (x *Index) Plan(mods []string) []string {
	var names []string
	seen := map[string]bool{}
	var add func(n string, depth int)
	add = func(n string, depth int) {
		n = Name(n)
		if seen[n] || depth > 8 {
			return
		}
		seen[n] = true
		soft := func(deps []string) {
			for _, d := range deps {
				if mods, _, err := x.Lookup(d); err == nil {
					for _, m := range mods {
						add(m, depth+1)
					}
				}
			}
		}
		sd := x.Softdeps[n]
		soft(sd.Pre)
		names = append(names, n)
		soft(sd.Post)
	}
	for _, m := range mods {
		add(m, 0)
	}
	files, _ := x.Deps.Order(names)
	return files
}
