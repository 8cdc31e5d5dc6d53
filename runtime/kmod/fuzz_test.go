package kmod

import (
	"path"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseDep(f *testing.F) {
	f.Add(modulesDep)
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Add("a.ko: a.ko\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseDep(strings.NewReader(s))
		if err != nil {
			return
		}
		var names []string
		for n := range m.File {
			names = append(names, n)
		}
		files, _ := m.Order(names)
		if len(files) > len(m.File) {
			t.Fatalf("Order() returned %d files for %d modules", len(files), len(m.File))
		}
		for _, f := range files {
			if !relPath(f) {
				t.Fatalf("Order() returned %q, outside the module directory", f)
			}
		}
	})
}

func FuzzParseAlias(f *testing.F) {
	f.Add(modulesAlias, "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	f.Add("alias [a-]x* m\nalias *:*[!z] n\n", "b:x")
	f.Add("alias \\ m\n", "\\")
	f.Fuzz(func(t *testing.T, s, name string) {
		as, err := ParseAlias(strings.NewReader(s))
		if err != nil {
			return
		}
		mods := newAliasTable(as).lookup(name)
		seen := map[string]bool{}
		for _, m := range mods {
			if seen[m] {
				t.Fatalf("lookup(%q) = %v, %q twice", name, mods, m)
			}
			seen[m] = true
		}
		// The prefix index finds what matching every pattern finds.
		want := map[string]bool{}
		for _, a := range as {
			if match(normalizeAlias(a.Pattern), normalizeAlias(name)) {
				want[a.Module] = true
			}
		}
		if !reflect.DeepEqual(seen, want) {
			t.Fatalf("lookup(%q) = %v, matching every pattern gives %v", name, seen, want)
		}
	})
}

// FuzzMatch compares match with path.Match where both define the same
// language: '*' and '?' on ASCII text without '/', '[' or '\' (fnmatch's
// '?' is a byte, path.Match's a rune).
func FuzzMatch(f *testing.F) {
	f.Add("pci:v00008086d*sv*sd*bc*sc*i*", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	f.Add("*a*b?c*", "xxaxbyczz")
	f.Add("[a-c]*", "b")
	f.Fuzz(func(t *testing.T, p, s string) {
		got := match(p, s) // must terminate and not panic on anything
		if strings.ContainsAny(p+s, "/[\\]") || !ascii(p+s) {
			return
		}
		want, err := path.Match(p, s)
		if err == nil && got != want {
			t.Fatalf("match(%q, %q) = %v, path.Match says %v", p, s, got, want)
		}
	})
}

func FuzzParseSoftdep(f *testing.F) {
	f.Add(modulesSoftdep)
	f.Add("softdep a pre: b post: c pre: d\n")
	f.Fuzz(func(t *testing.T, s string) {
		sd, err := ParseSoftdep(strings.NewReader(s))
		if err != nil {
			return
		}
		for name := range sd {
			if strings.ContainsAny(name, " \t\n") {
				t.Fatalf("softdep module %q has blanks", name)
			}
		}
	})
}

func FuzzParseBuiltinModinfo(f *testing.F) {
	f.Add([]byte(builtinModinfo))
	f.Add([]byte("a.alias=\x00.alias=x\x00b.alias=y=z"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, a := range ParseBuiltinModinfo(data) {
			if a.Module == "" || a.Pattern == "" {
				t.Fatalf("ParseBuiltinModinfo() gave %+v", a)
			}
		}
	})
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
