package signature

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// "x/**" is x and everything under it.
		{"bsp/**", "bsp", true},
		{"bsp/**", "bsp/kernel.img", true},
		{"bsp/**", "bsp/a/b/c", true},
		{"bsp/**", "bspx/kernel.img", false},
		{"bsp/**", "app/bsp/x", false},
		{"_config/app/**", "_config/app/etc/x.conf", true},
		{"_config/app/**", "_config/apps/etc", false},
		// Bare "**" is every key.
		{"**", "README.md", true},
		{"**", "a/b/c", true},
		{"**", "#spec", true},
		// "**" in the middle is zero or more elements.
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"**/run.json", "run.json", true},
		{"**/run.json", "app/run.json", true},
		{"**/*.json", "x/y/z.json", true},
		{"a/**/**/b", "a/b", true},
		// "*" and "?" stay within an element (FNM_PATHNAME).
		{"*", "README.md", true},
		{"*", "a/b", false},
		{"bsp/*", "bsp/kernel.img", true},
		{"bsp/*", "bsp/a/b", false},
		{"*.json", "device.json", true},
		{"*.json", ".json", true},
		{"b?p/*", "bsp/x", true},
		{"b?p/*", "b/p/x", false},
		{"a**b", "axxb", true},
		{"a**b", "ax/xb", false},
		{"*", "", true},
		// Literal keys.
		{"#spec", "#spec", true},
		{"#spec", "spec", false},
		{"device.json", "device.json", true},
		{"device.json", "device.jsonx", false},
		{"bsp/src.json", "bsp/src.json", true},
		// Classes.
		{"[ab]pp/x", "app/x", true},
		{"[!ab]pp/x", "app/x", false},
		{"[^ab]pp/x", "cpp/x", true},
		{"[a-c]x", "bx", true},
		{"[a-c]x", "dx", false},
		{"[]]x", "]x", true},
		{"[a-]x", "-x", true},
		{"[ü]", "ü", true},
		{"?", "ü", true},
		{"[ab", "a", false},
		{"[ab", "[ab", false},
		// Escapes.
		{`\*`, "*", true},
		{`\*`, "x", false},
		{`a\?`, "a?", true},
		{`[\]]`, "]", true},
		// Braces, as pvr's doublestar.
		{"{bsp,app}/**", "app/x", true},
		{"{bsp,app}/**", "bsp", true},
		{"{bsp,app}/**", "os/x", false},
		{"x{a,{b,c}}y", "xcy", true},
		{"x{a,{b,c}}y", "xdy", false},
		{"x{a,b", "x{a,b", true},
		{`\{a,b}`, "{a,b}", true},
		{"{,a}x", "x", true},
		// Empty pattern.
		{"", "", true},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestMatchBraceBomb(t *testing.T) {
	p := ""
	for range 20 {
		p += "{a,b}"
	}
	if Match(p, "aaaaaaaaaaaaaaaaaaaa") {
		t.Errorf("Match(%q, …) = true, want false (too many alternatives)", p)
	}
	if !Match("{a,b}{a,b}{a,b}", "bab") {
		t.Errorf("Match({a,b}x3, bab) = false, want true")
	}
}

func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"bsp/**", "bsp/kernel.img"}, {"**", "a"}, {"a/**/b", "a/x/b"}, {"[!a-c]x", "dx"},
		{`\`, `\`}, {"[", "["}, {"{a,{b,c}}", "c"}, {"*?*", "ü"}, {"[\\", "x"}, {"{,}", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Match(pattern, name)
		// A pattern without meta characters matches only itself.
		if !containsAny(pattern, `*?[{\`) && got != (pattern == name) {
			t.Errorf("Match(%q, %q) = %v for a literal pattern", pattern, name, got)
		}
		// "**" matches everything.
		if !Match("**", name) {
			t.Errorf("Match(**, %q) = false", name)
		}
		// "x/**" matches x.
		if !containsAny(name, `*?[{\`) && !Match(name+"/**", name) {
			t.Errorf("Match(%q, %q) = false", name+"/**", name)
		}
	})
}

func containsAny(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return true
			}
		}
	}
	return false
}
