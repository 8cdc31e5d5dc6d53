package kmod

import (
	"path"
	"strings"
)

// Name canonicalises a module name or file name: no directory, no
// .ko[.xz|.zst|.gz] suffix, dashes as underscores.
func Name(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(s, ".ko"), "-", "_")
}

// normalizeAlias turns dashes into underscores outside bracket expressions,
// as modprobe does with both modules.alias patterns and the name it is
// asked for, so "fs-overlay" and "fs_overlay" are the same alias.
func normalizeAlias(s string) string {
	if !strings.Contains(s, "-") {
		return s
	}
	b := []byte(s)
	in := false
	for i, c := range b {
		switch {
		case c == '[':
			in = true
		case c == ']':
			in = false
		case c == '-' && !in:
			b[i] = '_'
		}
	}
	return string(b)
}
