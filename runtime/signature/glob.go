package signature

import (
	"strings"
	"unicode/utf8"
)

// maxAlternatives bounds brace expansion so a hostile pattern cannot make
// matching explode; a pattern expanding further matches nothing.
const maxAlternatives = 256

// Match reports whether the state key name matches the pvs glob pattern.
//
// The syntax is the doublestar syntax pvr signs with, which is a superset
// of fnmatch(3) with FNM_PATHNAME as used by upstream Pantavisor:
//
//   - "*" matches any run of characters except "/", "?" one character
//     except "/", "[abc]", "[a-z]", "[!x]" and "[^x]" one character of a
//     class, and "\" escapes the next character;
//   - a path element that is exactly "**" matches zero or more whole
//     elements, so "x/**" matches "x" and everything under it, "**"
//     matches every key and "a/**/b" matches "a/b" and "a/x/y/b";
//   - "{a,b}" matches either alternative (pvr's doublestar supports it,
//     fnmatch does not; pvr is what produces the signatures).
//
// A malformed pattern (unterminated class) matches nothing.
func Match(pattern, name string) bool {
	return compile(pattern).match(strings.Split(name, "/"))
}

// glob is a compiled pattern: its brace alternatives split into elements.
type glob [][]string

// compile expands and splits pattern; a pattern with too many
// alternatives compiles to one that matches nothing.
func compile(pattern string) glob {
	alts, ok := expandBraces(pattern, nil)
	if !ok {
		return nil
	}
	g := make(glob, len(alts))
	for i, a := range alts {
		g[i] = strings.Split(a, "/")
	}
	return g
}

func (g glob) match(name []string) bool {
	for _, ps := range g {
		if matchElems(ps, name) {
			return true
		}
	}
	return false
}

// globs is a compiled list of patterns.
type globs []glob

func compileAll(patterns []string) globs {
	gs := make(globs, len(patterns))
	for i, p := range patterns {
		gs[i] = compile(p)
	}
	return gs
}

// match reports whether any of the globs matches name.
func (gs globs) match(name []string) bool {
	for _, g := range gs {
		if g.match(name) {
			return true
		}
	}
	return false
}

// matchElems matches pattern elements against name elements, "**"
// elements matching any number of name elements. It is a dynamic program
// over (pattern index, name index) so repeated "**" stay polynomial.
func matchElems(ps, ns []string) bool {
	// ok[j] reports whether ps[i:] matches ns[j:], computed from i = len(ps) down.
	var buf [2][16]bool
	ok, next := buf[0][:], buf[1][:]
	if len(ns)+1 > len(ok) {
		ok, next = make([]bool, len(ns)+1), make([]bool, len(ns)+1)
	}
	ok, next = ok[:len(ns)+1], next[:len(ns)+1]
	clear(ok)
	ok[len(ns)] = true
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i] == "**" {
			// ps[i:] matches ns[j:] if ps[i+1:] matches ns[k:] for some k >= j.
			any := false
			for j := len(ns); j >= 0; j-- {
				any = any || ok[j]
				next[j] = any
			}
		} else {
			next[len(ns)] = false
			for j := len(ns) - 1; j >= 0; j-- {
				next[j] = ok[j+1] && matchElem(ps[i], ns[j])
			}
		}
		ok, next = next, ok
	}
	return ok[0]
}

// matchElem matches one path element with "*", "?", classes and escapes.
func matchElem(p, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, w := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += w
					continue
				}
			case '[':
				if sx < len(s) {
					r, w := utf8.DecodeRuneInString(s[sx:])
					hit, n, valid := matchClass(p[px:], r)
					if !valid {
						return false
					}
					if hit {
						px += n
						sx += w
						continue
					}
				}
			default:
				lit := p[px:]
				if c == '\\' && px+1 < len(p) {
					lit = p[px+1:]
					px++
				}
				if sx < len(s) {
					pr, pw := utf8.DecodeRuneInString(lit)
					sr, sw := utf8.DecodeRuneInString(s[sx:])
					if pr == sr && (pr != utf8.RuneError || lit[:pw] == s[sx:sx+sw]) {
						px += pw
						sx += sw
						continue
					}
				}
			}
		}
		// Mismatch: let the last "*" swallow one more character.
		if starPx >= 0 && starSx < len(s) {
			_, w := utf8.DecodeRuneInString(s[starSx:])
			starSx += w
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

// matchClass matches r against the class at the start of p ("[...]"). It
// returns whether r is in the class, the length of the class text and
// whether the class is well formed.
func matchClass(p string, r rune) (hit bool, n int, valid bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	first := true
	for {
		if i >= len(p) {
			return false, 0, false
		}
		if p[i] == ']' && !first {
			i++
			break
		}
		first = false
		lo, w, ok := classChar(p[i:])
		if !ok {
			return false, 0, false
		}
		i += w
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			hi, w, ok = classChar(p[i+1:])
			if !ok {
				return false, 0, false
			}
			i += 1 + w
		}
		if lo <= r && r <= hi {
			hit = true
		}
	}
	return hit != negate, i, true
}

// classChar reads one possibly escaped character of a class.
func classChar(p string) (rune, int, bool) {
	w0 := 0
	if p[0] == '\\' {
		if len(p) < 2 {
			return 0, 0, false
		}
		w0 = 1
	}
	r, w := utf8.DecodeRuneInString(p[w0:])
	return r, w0 + w, true
}

// expandBraces appends to out every alternative of pattern's "{a,b}"
// groups. Unbalanced braces are literal. It reports false when the
// expansion exceeds maxAlternatives.
func expandBraces(pattern string, out []string) ([]string, bool) {
	open, close, commas := findBraces(pattern)
	if open < 0 {
		if len(out) >= maxAlternatives {
			return out, false
		}
		return append(out, pattern), true
	}
	prefix, suffix := pattern[:open], pattern[close+1:]
	start := open + 1
	for _, c := range append(commas, close) {
		var ok bool
		if out, ok = expandBraces(prefix+pattern[start:c]+suffix, out); !ok {
			return out, false
		}
		start = c + 1
	}
	return out, true
}

// findBraces finds the first balanced top-level "{...}" group outside
// classes, returning the positions of its braces and top-level commas.
func findBraces(p string) (open, close int, commas []int) {
	open = -1
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			if _, n, valid := matchClass(p[i:], 0); valid {
				i += n - 1
			}
		case '{':
			if depth == 0 {
				open = i
				commas = commas[:0]
			}
			depth++
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth == 0 {
				return open, i, commas
			}
		}
	}
	return -1, -1, nil
}
