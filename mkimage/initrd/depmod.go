package initrd

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ulikunitz/xz"
)

// ModInfo reads the .modinfo section of a kernel module (.ko or .ko.xz)
// into key → values.
func ModInfo(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	defer f.Close()
	var r io.ReaderAt = f
	if strings.HasSuffix(path, ".xz") {
		xr, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("initrd: %s: %w", path, err)
		}
		data, err := io.ReadAll(xr)
		if err != nil {
			return nil, fmt.Errorf("initrd: %s: %w", path, err)
		}
		r = bytes.NewReader(data)
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("initrd: %s: %w", path, err)
	}
	sec := ef.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("initrd: %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("initrd: %s: %w", path, err)
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// Depmod computes modules.dep for a module directory (/lib/modules/<kver>)
// from each module's modinfo "depends=" field, like depmod(8) without
// symbol resolution, and works for any architecture. It returns the
// parsed result and the modules.dep text (transitive dependencies, deepest
// last, as depmod writes them).
func Depmod(dir string) (*ModDep, []byte, error) {
	m := &ModDep{Path: map[string]string{}, Deps: map[string][]string{}, Builtin: map[string]bool{}}
	direct := map[string][]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".ko") || strings.HasSuffix(p, ".ko.xz")) {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := ModInfo(p)
		if err != nil {
			return err
		}
		name := ModName(rel)
		m.Path[name] = rel
		for _, d := range info["depends"] {
			for _, n := range strings.Split(d, ",") {
				if n != "" {
					direct[name] = append(direct[name], ModName(n))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("initrd: depmod %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			m.Builtin[ModName(l)] = true
		}
	}
	names := make([]string, 0, len(m.Path))
	for n := range m.Path {
		names = append(names, n)
	}
	sort.Strings(names)
	var text bytes.Buffer
	for _, n := range names {
		// Breadth-first over direct deps gives depmod's order: nearest first,
		// deepest last (a loader walks the list backwards).
		var order []string
		seen := map[string]bool{n: true}
		queue := append([]string(nil), direct[n]...)
		for len(queue) > 0 {
			d := queue[0]
			queue = queue[1:]
			if seen[d] {
				continue
			}
			seen[d] = true
			if p, ok := m.Path[d]; ok {
				order = append(order, p)
				queue = append(queue, direct[d]...)
			}
		}
		m.Deps[n] = order
		text.WriteString(m.Path[n] + ":")
		for _, p := range order {
			text.WriteString(" " + p)
		}
		text.WriteString("\n")
	}
	return m, text.Bytes(), nil
}

// IndexFiles computes the modprobe index files depmod(8) writes besides
// modules.dep, from the modinfo of the given module files (relative to the
// module directory dir; nil means every module under dir):
//
//   - modules.alias: "alias <pattern> <module>" for each "alias=" value
//     (device modalias globs, fs-*, net-pf-*, crypto-*...);
//   - modules.softdep: "softdep <module> pre: ... post: ..." for each
//     "softdep=" value.
//
// It returns file name → content, sorted by module name.
func IndexFiles(dir string, files []string) (map[string][]byte, error) {
	if files == nil {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".ko") || strings.HasSuffix(p, ".ko.xz")) {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("initrd: module index %s: %w", dir, err)
		}
	}
	sorted := append([]string(nil), files...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := ModName(sorted[i]), ModName(sorted[j])
		return a < b || a == b && sorted[i] < sorted[j]
	})
	var alias, softdep bytes.Buffer
	alias.WriteString("# Aliases extracted from modules themselves.\n")
	softdep.WriteString("# Soft dependencies extracted from modules themselves.\n")
	for _, f := range sorted {
		info, err := ModInfo(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		name := ModName(f)
		for _, a := range info["alias"] {
			if a = strings.TrimSpace(a); a != "" && !strings.ContainsAny(a, " \t\n") {
				fmt.Fprintf(&alias, "alias %s %s\n", a, name)
			}
		}
		for _, s := range info["softdep"] {
			if s = strings.Join(strings.Fields(s), " "); s != "" {
				fmt.Fprintf(&softdep, "softdep %s %s\n", name, s)
			}
		}
	}
	return map[string][]byte{"modules.alias": alias.Bytes(), "modules.softdep": softdep.Bytes()}, nil
}

// WriteIndexFiles writes IndexFiles of every module under dir into dir.
func WriteIndexFiles(dir string) error {
	idx, err := IndexFiles(dir, nil)
	if err != nil {
		return err
	}
	for name, data := range idx {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
	}
	return nil
}
