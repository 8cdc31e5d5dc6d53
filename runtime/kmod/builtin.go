package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// ParseBuiltin parses modules.builtin (one module file per line) into the
// set of module names compiled into the kernel.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		out[Name(l)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.builtin: %w", err)
	}
	return out, nil
}

// ParseBuiltinModinfo returns the aliases of built-in modules from
// modules.builtin.modinfo: NUL-separated "<module>.<key>=<value>" records,
// of which the "alias" keys count.
func ParseBuiltinModinfo(data []byte) []Alias {
	var out []Alias
	for _, rec := range bytes.Split(data, []byte{0}) {
		kv, v, ok := bytes.Cut(rec, []byte("="))
		if !ok {
			continue
		}
		mod, key, ok := bytes.Cut(kv, []byte("."))
		if !ok || string(key) != "alias" || len(mod) == 0 || len(v) == 0 {
			continue
		}
		out = append(out, Alias{Pattern: string(v), Module: Name(string(mod))})
	}
	return out
}

// Softdep is the soft dependencies of one module: modules to load before
// and after it when present (modules.softdep, or a module's "softdep="
// modinfo).
type Softdep struct {
	Pre, Post []string
}

// ParseSoftdep parses "softdep <module> pre: a b post: c" lines. Like
// libkmod it ignores names before any "pre:" or "post:" (cifs's modinfo
// has "softdep=gcm"). Names may be aliases (crypto-crc32c).
func ParseSoftdep(r io.Reader) (map[string]Softdep, error) {
	out := map[string]Softdep{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "softdep" {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("modules.softdep line %d: %q has no dependencies", n, sc.Text())
		}
		name := Name(f[1])
		sd := out[name]
		var cur *[]string
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				cur = &sd.Pre
			case "post:":
				cur = &sd.Post
			default:
				if cur != nil {
					*cur = append(*cur, w)
				}
			}
		}
		out[name] = sd
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.softdep: %w", err)
	}
	return out, nil
}
