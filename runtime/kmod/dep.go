package kmod

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Deps is a parsed modules.dep: for each module name, its file and the
// files it depends on, relative to the module directory.
type Deps struct {
	File map[string]string
	Deps map[string][]string
}

// ParseDep parses depmod's modules.dep ("file: dep dep ..."). Paths must be
// relative and stay inside the module directory.
func ParseDep(r io.Reader) (*Deps, error) {
	m := &Deps{File: map[string]string{}, Deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		f, deps, ok := strings.Cut(l, ":")
		if !ok || !relPath(f) {
			return nil, fmt.Errorf("modules.dep line %d: bad entry %q", n, l)
		}
		ds := strings.Fields(deps)
		for _, d := range ds {
			if !relPath(d) {
				return nil, fmt.Errorf("modules.dep line %d: bad dependency %q", n, d)
			}
		}
		name := Name(f)
		m.File[name] = f
		m.Deps[name] = ds
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return m, nil
}

// relPath reports whether p is a non-empty relative path without "..".
func relPath(p string) bool {
	if p == "" || p[0] == '/' {
		return false
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return false
		}
	}
	return true
}

// Order returns the files to load for names (module names, not aliases),
// dependencies first, each once. Names not in modules.dep are returned in
// missing (built in, or absent). A dependency is visited through its own
// modules.dep line, so the order is right whatever order a line lists its
// dependencies in; cycles are cut.
func (m *Deps) Order(names []string) (files, missing []string) {
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
			visit(Name(deps[i]), depth+1)
		}
		files = append(files, f)
	}
	for _, n := range names {
		visit(Name(n), 0)
	}
	return files, missing
}
