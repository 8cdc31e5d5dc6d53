package embedded

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// modName canonicalises a module name or file name: no directory or
// .ko[.xz|.zst|.gz] suffix, dashes as underscores.
func modName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(s, ".ko"), "-", "_")
}

// ModuleDeps maps a module name to its file and its dependency files (all
// relative to the module directory), as modules.dep lists them.
type ModuleDeps struct {
	File map[string]string
	Deps map[string][]string
}

// ParseModulesDep parses depmod's modules.dep.
func ParseModulesDep(r io.Reader) (*ModuleDeps, error) {
	m := &ModuleDeps{File: map[string]string{}, Deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		f, deps, ok := strings.Cut(l, ":")
		if !ok || f == "" || strings.HasPrefix(f, "/") || strings.Contains(f, "..") {
			return nil, fmt.Errorf("modules.dep line %d: bad entry %q", n, l)
		}
		name := modName(f)
		m.File[name] = f
		m.Deps[name] = strings.Fields(deps)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return m, nil
}

// Order returns the files to load for names, dependencies first, each once.
// Names not in modules.dep are returned in missing (built in, or absent).
func (m *ModuleDeps) Order(names []string) (files, missing []string) {
	done := map[string]bool{}
	var visit func(string, int)
	visit = func(n string, depth int) {
		if done[n] || depth > 64 {
			return
		}
		done[n] = true
		f, ok := m.File[n]
		if !ok {
			missing = append(missing, n)
			return
		}
		// modules.dep lists the deepest dependency last.
		deps := m.Deps[n]
		for i := len(deps) - 1; i >= 0; i-- {
			visit(modName(deps[i]), depth+1)
		}
		files = append(files, f)
	}
	for _, n := range names {
		visit(modName(n), 0)
	}
	return files, missing
}

// ReadModuleLists reads every *.conf of a modules-load.d style directory
// (one module name per line, # and ; comments), in file name order.
func ReadModuleLists(dir string) ([]string, error) {
	confs, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, err
	}
	sort.Strings(confs)
	var names []string
	for _, c := range confs {
		data, err := os.ReadFile(c)
		if err != nil {
			return nil, fmt.Errorf("module list: %w", err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' || l[0] == ';' {
				continue
			}
			names = append(names, l)
		}
	}
	return names, nil
}

// LoadModules loads names and their dependencies from the module directory
// dir (/lib/modules/<uname -r>). Modules already loaded or built in are
// fine; the first real failure is returned after trying all of them.
func LoadModules(log *slog.Logger, dir string, names []string) (loaded int, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return 0, fmt.Errorf("load modules: %w", err)
	}
	deps, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("load modules: %w", err)
	}
	files, missing := deps.Order(names)
	for _, m := range missing {
		log.Debug("module not in modules.dep (built in?)", "module", m)
	}
	var first error
	for _, file := range files {
		err := loadModule(filepath.Join(dir, file))
		switch {
		case err == nil:
			loaded++
		case isExist(err):
		case isNoDevice(err):
			// Hardware-specific modules (crc32c-intel without SSE4.2, ...)
			// refuse to load where their hardware is missing, as with modprobe.
			log.Info("module not applicable here", "module", file, "err", err)
		default:
			log.Warn("load module", "module", file, "err", err)
			if first == nil {
				first = fmt.Errorf("load module %s: %w", file, err)
			}
		}
	}
	return loaded, first
}
