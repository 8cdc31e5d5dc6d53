package initrd

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrMissingLib means a DT_NEEDED library is not in the sysroot.
var ErrMissingLib = errors.New("shared library not found in sysroot")

// Sysroot resolves paths of a target root file system unpacked on the host
// (from Debian packages), following its symlinks inside it, never on the
// host. It is how the initrd gets a foreign architecture's libraries
// without running that architecture's loader.
type Sysroot struct {
	Dir string
}

// Resolve follows symlinks of the target path p (absolute, as seen on the
// target) inside the sysroot. It returns the final target path and every
// symlink passed on the way (target path → link text), so both can be
// reproduced in the initrd.
func (s Sysroot) Resolve(p string) (string, map[string]string, error) {
	links := map[string]string{}
	cur := path.Clean("/" + p)
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(cur[1:], "/")
		changed := false
		for i := range parts {
			prefix := "/" + strings.Join(parts[:i+1], "/")
			fi, err := os.Lstat(filepath.Join(s.Dir, prefix))
			if err != nil {
				return "", nil, err
			}
			if fi.Mode()&os.ModeSymlink == 0 {
				continue
			}
			target, err := os.Readlink(filepath.Join(s.Dir, prefix))
			if err != nil {
				return "", nil, err
			}
			links[prefix] = target
			next := target
			if !strings.HasPrefix(target, "/") {
				next = path.Join(path.Dir(prefix), target)
			}
			cur = path.Clean("/" + path.Join(append([]string{next}, parts[i+1:]...)...))
			changed = true
			break
		}
		if !changed {
			return cur, links, nil
		}
	}
	return "", nil, fmt.Errorf("initrd: %s: too many levels of symbolic links", p)
}

// libDirs returns the default library search path of the sysroot: the
// Debian multiarch directories, /etc/ld.so.conf.d entries and the classic
// ones.
func (s Sysroot) libDirs() []string {
	var dirs []string
	confs, _ := filepath.Glob(filepath.Join(s.Dir, "etc/ld.so.conf.d/*.conf"))
	sort.Strings(confs)
	for _, c := range confs {
		f, err := os.Open(c)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(l, "/") {
				dirs = append(dirs, l)
			}
		}
		f.Close()
	}
	multi, _ := filepath.Glob(filepath.Join(s.Dir, "lib/*-linux-gnu*"))
	multiUsr, _ := filepath.Glob(filepath.Join(s.Dir, "usr/lib/*-linux-gnu*"))
	for _, m := range append(multi, multiUsr...) {
		dirs = append(dirs, "/"+filepath.ToSlash(strings.TrimPrefix(m, s.Dir+"/")))
	}
	return append(dirs, "/lib", "/usr/lib", "/lib64", "/usr/lib64")
}

// Needed walks DT_NEEDED of the given ELF files (host paths; binaries built
// for the target or files inside the sysroot) transitively and returns the
// target paths of every library and dynamic loader they need, sorted.
// Statically linked files need nothing.
func (s Sysroot) Needed(files []string) ([]string, error) {
	dirs := s.libDirs()
	found := map[string]bool{}
	var queue []string
	queue = append(queue, files...)
	seenHost := map[string]bool{}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		if seenHost[f] {
			continue
		}
		seenHost[f] = true
		ef, err := elf.Open(f)
		if err != nil {
			return nil, fmt.Errorf("initrd: read ELF %s: %w", f, err)
		}
		interp := ""
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				b := make([]byte, p.Filesz)
				if _, err := p.ReadAt(b, 0); err == nil {
					interp = strings.TrimRight(string(b), "\x00")
				}
			}
		}
		needed, _ := ef.ImportedLibraries()
		rpath, _ := ef.DynString(elf.DT_RUNPATH)
		if len(rpath) == 0 {
			rpath, _ = ef.DynString(elf.DT_RPATH)
		}
		ef.Close()
		if interp != "" && !found[interp] {
			if _, err := os.Lstat(filepath.Join(s.Dir, interp)); err != nil {
				return nil, fmt.Errorf("initrd: %s: loader %s: %w", f, interp, ErrMissingLib)
			}
			found[interp] = true
			real, _, err := s.Resolve(interp)
			if err != nil {
				return nil, fmt.Errorf("initrd: loader %s: %w", interp, err)
			}
			queue = append(queue, filepath.Join(s.Dir, real))
		}
		search := dirs
		for _, rp := range rpath {
			for _, d := range strings.Split(rp, ":") {
				if strings.Contains(d, "$ORIGIN") {
					continue // $ORIGIN is relative to the target path, not the host one
				}
				search = append([]string{d}, search...)
			}
		}
		for _, lib := range needed {
			p, err := s.find(lib, search)
			if err != nil {
				return nil, fmt.Errorf("initrd: %s needs %s: %w", filepath.Base(f), lib, err)
			}
			if found[p] {
				continue
			}
			found[p] = true
			real, _, err := s.Resolve(p)
			if err != nil {
				return nil, err
			}
			queue = append(queue, filepath.Join(s.Dir, real))
		}
	}
	out := make([]string, 0, len(found))
	for p := range found {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func (s Sysroot) find(lib string, dirs []string) (string, error) {
	if strings.Contains(lib, "/") {
		return "", fmt.Errorf("%q: %w", lib, ErrMissingLib)
	}
	for _, d := range dirs {
		p := path.Join(d, lib)
		if _, err := os.Stat(filepath.Join(s.Dir, p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q (searched %s): %w", lib, strings.Join(dirs, ":"), ErrMissingLib)
}

// AddFromSysroot adds the target path p to the tree as it is in the
// sysroot: every symlink on the way becomes a symlink, the final file a
// regular file (mode kept).
func (t *Tree) AddFromSysroot(s Sysroot, p string) error {
	real, links, err := s.Resolve(p)
	if err != nil {
		return fmt.Errorf("initrd: %s: %w", p, err)
	}
	names := make([]string, 0, len(links))
	for l := range links {
		names = append(names, l)
	}
	sort.Strings(names)
	for _, l := range names {
		if err := t.AddSymlink(l, links[l]); err != nil {
			return err
		}
	}
	return t.AddFile(real, filepath.Join(s.Dir, real), 0)
}
