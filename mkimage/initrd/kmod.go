package initrd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrNoModule means a module is neither in modules.dep nor built in.
var ErrNoModule = errors.New("no such kernel module")

// ModName turns a module file name or a user-written name into the
// canonical module name: no directory, no .ko[.xz|.zst|.gz], '-' → '_'.
func ModName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ModDep is a parsed modules.dep plus modules.builtin of one kernel.
type ModDep struct {
	// Path maps a module name to its file, relative to /lib/modules/<kver>.
	Path map[string]string
	// Deps maps a module name to the files it depends on.
	Deps map[string][]string
	// Builtin holds the names of modules compiled into the kernel.
	Builtin map[string]bool
}

// ParseModulesDep parses depmod's modules.dep text.
func ParseModulesDep(r io.Reader) (*ModDep, error) {
	m := &ModDep{Path: map[string]string{}, Deps: map[string][]string{}, Builtin: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(l, ":")
		if !ok || mod == "" || strings.HasPrefix(mod, "/") || strings.Contains(mod, "..") {
			return nil, fmt.Errorf("initrd: modules.dep line %d: %q is not \"module: deps\"", line, l)
		}
		name := ModName(mod)
		m.Path[name] = mod
		for _, d := range strings.Fields(deps) {
			if strings.HasPrefix(d, "/") || strings.Contains(d, "..") {
				return nil, fmt.Errorf("initrd: modules.dep line %d: bad dependency %q", line, d)
			}
			m.Deps[name] = append(m.Deps[name], d)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("initrd: modules.dep: %w", err)
	}
	return m, nil
}

// LoadModDep reads modules.dep and modules.builtin from a module directory.
func LoadModDep(dir string) (*ModDep, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	defer f.Close()
	m, err := ParseModulesDep(f)
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			m.Builtin[ModName(l)] = true
		}
	}
	return m, nil
}

// Resolve returns the module files (relative paths) needed to load names,
// dependencies before dependents, each once. Built-in modules are skipped.
func (m *ModDep) Resolve(names []string) ([]string, error) {
	var out []string
	done := map[string]bool{}
	var visit func(name string, stack []string) error
	visit = func(name string, stack []string) error {
		if done[name] {
			return nil
		}
		for _, s := range stack {
			if s == name {
				return fmt.Errorf("initrd: module dependency loop: %s", strings.Join(append(stack, name), " -> "))
			}
		}
		p, ok := m.Path[name]
		if !ok {
			if m.Builtin[name] {
				done[name] = true
				return nil
			}
			return fmt.Errorf("initrd: %s: %w", name, ErrNoModule)
		}
		for _, d := range m.Deps[name] {
			if err := visit(ModName(d), append(stack, name)); err != nil {
				return err
			}
		}
		done[name] = true
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		if err := visit(ModName(n), nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DepText renders modules.dep lines for just the given module files.
func (m *ModDep) DepText(files []string) []byte {
	var b strings.Builder
	for _, f := range files {
		n := ModName(f)
		b.WriteString(f + ":")
		for _, d := range m.Deps[n] {
			b.WriteString(" " + d)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}
