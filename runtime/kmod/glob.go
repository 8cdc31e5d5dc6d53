package kmod

import "strings"

// match reports whether s matches the fnmatch(3) pattern p without flags,
// the way depmod's alias patterns are meant: '*' is any run of bytes
// (slashes included), '?' one byte, "[...]" a set with ranges and '!' or
// '^' negation, '\' escapes the next byte. A malformed bracket matches a
// literal '['.
func match(p, s string) bool {
	// Iterative with one backtrack point for the last '*': linear enough
	// for alias patterns and no recursion on hostile input.
	var starP, starS = -1, 0
	i, j := 0, 0
	for j < len(s) {
		if i < len(p) {
			switch c := p[i]; c {
			case '*':
				starP, starS = i, j
				i++
				continue
			case '?':
				i++
				j++
				continue
			case '[':
				if ok, n := matchClass(p[i:], s[j]); n > 0 {
					if ok {
						i += n
						j++
						continue
					}
				} else if s[j] == '[' {
					i++
					j++
					continue
				}
			case '\\':
				if i+1 < len(p) && p[i+1] == s[j] {
					i += 2
					j++
					continue
				}
				if i+1 == len(p) && s[j] == '\\' {
					i++
					j++
					continue
				}
			default:
				if c == s[j] {
					i++
					j++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		i, j = starP+1, starS
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

// matchClass matches c against the bracket expression at the start of p
// and returns the expression's length, or 0 when it is not closed.
func matchClass(p string, c byte) (bool, int) {
	i := 1
	neg := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		neg = true
		i++
	}
	ok := false
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return ok != neg, i + 1
		}
		first = false
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		i++
	}
	return false, 0
}

// metaIndex returns the index of the first glob character of p, or -1.
func metaIndex(p string) int {
	return strings.IndexAny(p, "*?[\\")
}
