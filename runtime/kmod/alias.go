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
// characters are looked up exactly; the others are indexed by their
// literal prefix (the text before the first glob character), so a lookup
// only matches the patterns whose prefix the name starts with: one map
// probe per prefix length instead of a match against each of the ~20000
// patterns of a distribution kernel.
type aliasTable struct {
	exact    map[string][]string
	byPrefix map[string][]Alias
	maxLen   int // longest literal prefix
}

func newAliasTable(as []Alias) *aliasTable {
	t := &aliasTable{exact: map[string][]string{}, byPrefix: map[string][]Alias{}}
	for _, a := range as {
		p := normalizeAlias(a.Pattern)
		a.Pattern = p
		n := metaIndex(p)
		if n < 0 {
			t.exact[p] = append(t.exact[p], a.Module)
			continue
		}
		t.byPrefix[p[:n]] = append(t.byPrefix[p[:n]], a)
		t.maxLen = max(t.maxLen, n)
	}
	return t
}

// lookup returns the modules whose patterns match name, exact aliases
// first, then by pattern prefix length and file order; each once.
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
	for n := 0; n <= len(name) && n <= t.maxLen; n++ {
		for _, a := range t.byPrefix[name[:n]] {
			if match(a.Pattern, name) {
				add(a.Module)
			}
		}
	}
	return out
}
