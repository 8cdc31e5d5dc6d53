package kmod

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Alias is one "alias <pattern> <module>" line of modules.alias. Pattern
// is an fnmatch(3) glob (depmod writes device aliases as
// "pci:v00008086d000010D3sv*sd*bc*sc*i*").
type Alias struct {
	Pattern, Module string
}

// ParseAlias parses modules.alias (or the alias lines of a modprobe.d
// file): "alias <pattern> <module>" per line, # comments; other
// directives are ignored.
func ParseAlias(r io.Reader) ([]Alias, error) {
	var out []Alias
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || f[0] != "alias" {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("modules.alias line %d: want \"alias <pattern> <module>\", got %q", n, sc.Text())
		}
		out = append(out, Alias{Pattern: f[1], Module: Name(f[2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.alias: %w", err)
	}
	return out, nil
}

// aliasTable finds the modules of an alias. Patterns without glob
// characters are looked up exactly; the others are bucketed by the text
// before their first ':' (the bus: "pci", "usb", "acpi"...) so a device
// modalias is only matched against its own bus.
type aliasTable struct {
	exact  map[string][]string
	bus    map[string][]Alias
	others []Alias // patterns whose bus part has glob characters
}

func newAliasTable(as []Alias) *aliasTable {
	t := &aliasTable{exact: map[string][]string{}, bus: map[string][]Alias{}}
	for _, a := range as {
		p := normalizeAlias(a.Pattern)
		a.Pattern = p
		switch {
		case !hasMeta(p):
			t.exact[p] = append(t.exact[p], a.Module)
		default:
			b, _, ok := strings.Cut(p, ":")
			if ok && !hasMeta(b) {
				t.bus[b] = append(t.bus[b], a)
			} else {
				t.others = append(t.others, a)
			}
		}
	}
	return t
}

// lookup returns the modules whose patterns match name, in file order
// within each kind, each once.
func (t *aliasTable) lookup(name string) []string {
	if t == nil {
		return nil
	}
	name = normalizeAlias(name)
	var out []string
	seen := map[string]bool{}
	add := func(m string) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	for _, m := range t.exact[name] {
		add(m)
	}
	b, _, _ := strings.Cut(name, ":")
	for _, a := range t.bus[b] {
		if match(a.Pattern, name) {
			add(a.Module)
		}
	}
	for _, a := range t.others {
		if match(a.Pattern, name) {
			add(a.Module)
		}
	}
	return out
}
