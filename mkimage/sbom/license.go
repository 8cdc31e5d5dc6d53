package sbom

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// NoAssertion is SPDX's "nothing is claimed" value.
const NoAssertion = "NOASSERTION"

// debianLicenses maps DEP-5 short names (lower case) to SPDX license ids.
// DEP-5 names follow SPDX mostly, but "+" means "or later", and a few
// names are Debian's own.
var debianLicenses = map[string]string{
	"gpl-1":            "GPL-1.0-only",
	"gpl-1+":           "GPL-1.0-or-later",
	"gpl-2":            "GPL-2.0-only",
	"gpl-2+":           "GPL-2.0-or-later",
	"gpl-2.0":          "GPL-2.0-only",
	"gpl-2.0+":         "GPL-2.0-or-later",
	"gpl-3":            "GPL-3.0-only",
	"gpl-3+":           "GPL-3.0-or-later",
	"gpl-3.0":          "GPL-3.0-only",
	"gpl-3.0+":         "GPL-3.0-or-later",
	"lgpl-2":           "LGPL-2.0-only",
	"lgpl-2+":          "LGPL-2.0-or-later",
	"lgpl-2.1":         "LGPL-2.1-only",
	"lgpl-2.1+":        "LGPL-2.1-or-later",
	"lgpl-3":           "LGPL-3.0-only",
	"lgpl-3+":          "LGPL-3.0-or-later",
	"agpl-3":           "AGPL-3.0-only",
	"agpl-3+":          "AGPL-3.0-or-later",
	"gfdl-1.2":         "GFDL-1.2-only",
	"gfdl-1.2+":        "GFDL-1.2-or-later",
	"gfdl-1.3":         "GFDL-1.3-only",
	"gfdl-1.3+":        "GFDL-1.3-or-later",
	"expat":            "MIT",
	"mit":              "MIT",
	"isc":              "ISC",
	"zlib":             "Zlib",
	"bsd-2-clause":     "BSD-2-Clause",
	"bsd-3-clause":     "BSD-3-Clause",
	"bsd-4-clause":     "BSD-4-Clause",
	"apache-2.0":       "Apache-2.0",
	"mpl-1.1":          "MPL-1.1",
	"mpl-2.0":          "MPL-2.0",
	"cc0-1.0":          "CC0-1.0",
	"cc-by-4.0":        "CC-BY-4.0",
	"cc-by-sa-4.0":     "CC-BY-SA-4.0",
	"artistic-1.0":     "Artistic-1.0",
	"artistic-2.0":     "Artistic-2.0",
	"openssl":          "OpenSSL",
	"ssleay":           "SSLeay-standalone",
	"curl":             "curl",
	"unicode-dfs-2016": "Unicode-DFS-2016",
	"x11":              "X11",
	"ofl-1.1":          "OFL-1.1",
	"python-2.0":       "Python-2.0",
	"bsl-1.0":          "BSL-1.0",
	"0bsd":             "0BSD",
	"unlicense":        "Unlicense",
	"wtfpl":            "WTFPL",
	"psf-2.0":          "PSF-2.0",
	"libpng":           "Libpng",
	"libpng-2.0":       "libpng-2.0",
	"ftl":              "FTL",
	"bzip2-1.0.6":      "bzip2-1.0.6",
	"mit-0":            "MIT-0",
	"ijg":              "IJG",
	"ncsa":             "NCSA",
	"postgresql":       "PostgreSQL",
	"info-zip":         "Info-ZIP",
	"sleepycat":        "Sleepycat",
	"tcl":              "TCL",
	"w3c":              "W3C",
	"epl-1.0":          "EPL-1.0",
	"epl-2.0":          "EPL-2.0",
	"cddl-1.0":         "CDDL-1.0",
	"ecl-2.0":          "ECL-2.0",
}

// refRe is what a LicenseRef- id may carry after its prefix.
var refRe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// License is a licence that is not on the SPDX list: a LicenseRef with the
// text the copyright file gives for it.
type License struct {
	ID, Name, Text string
}

// Licensing is what a package's copyright file says in SPDX terms.
type Licensing struct {
	// Declared is an SPDX license expression, or NOASSERTION when the
	// file is not machine-readable (DEP-5) or is missing.
	Declared string
	// Copyright is the copyright lines, or NOASSERTION.
	Copyright string
	// Refs are the LicenseRef-… ids Declared uses.
	Refs []License
}

// ParseCopyright reads a Debian copyright file. Only the machine-readable
// format (DEP-5, "Format: …copyright-format…") is understood; anything
// else gives NOASSERTION rather than a guess.
func ParseCopyright(data []byte) Licensing {
	no := Licensing{Declared: NoAssertion, Copyright: NoAssertion}
	paras := paragraphs(string(data))
	if len(paras) == 0 || !strings.Contains(paras[0]["format"], "copyright-format") {
		return no
	}
	texts := map[string]string{} // standalone License paragraphs: name → text
	for _, p := range paras[1:] {
		if _, files := p["files"]; files {
			continue
		}
		if l, ok := p["license"]; ok {
			name, text, _ := strings.Cut(l, "\n")
			texts[strings.ToLower(strings.TrimSpace(name))] = text
		}
	}
	var exprs, copyrights []string
	refs := map[string]License{}
	for _, p := range paras[1:] {
		if _, files := p["files"]; !files {
			continue
		}
		name, text, _ := strings.Cut(p["license"], "\n")
		if k := strings.ToLower(strings.TrimSpace(name)); texts[k] == "" && strings.TrimSpace(text) != "" {
			texts[k] = text // the text given in place
		}
		e, ok := expression(name, texts, refs)
		if !ok {
			return no
		}
		if !slices.Contains(exprs, e) {
			exprs = append(exprs, e)
		}
		for _, c := range strings.Split(p["copyright"], "\n") {
			if c = strings.TrimSpace(c); c != "" && !slices.Contains(copyrights, c) {
				copyrights = append(copyrights, c)
			}
		}
	}
	if len(exprs) == 0 {
		return no
	}
	slices.Sort(exprs)
	for i, e := range exprs {
		if len(exprs) > 1 && strings.ContainsAny(e, " ") {
			exprs[i] = "(" + e + ")"
		}
	}
	l := Licensing{Declared: strings.Join(exprs, " AND "), Copyright: NoAssertion}
	if len(copyrights) > 0 {
		l.Copyright = strings.Join(copyrights, "\n")
	}
	for _, id := range slices.Sorted(maps.Keys(refs)) {
		l.Refs = append(l.Refs, refs[id])
	}
	return l
}

// expression turns one DEP-5 License short name line ("GPL-2+ or
// BSD-3-clause", "LGPL-2.1+ and MIT", "A, and B") into an SPDX expression.
func expression(line string, texts map[string]string, refs map[string]License) (string, bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return "", false
	}
	var out []string
	for _, tok := range strings.Fields(strings.ReplaceAll(line, ",", " ")) {
		switch strings.ToLower(tok) {
		case "or":
			out = append(out, "OR")
			continue
		case "and":
			out = append(out, "AND")
			continue
		case "with":
			return licenseRef(line, texts, refs), true
		}
		out = append(out, licenseID(tok, texts, refs))
	}
	// operators must alternate with ids
	for i, t := range out {
		op := t == "OR" || t == "AND"
		if op == (i%2 == 0) {
			return licenseRef(line, texts, refs), true
		}
	}
	if len(out)%2 == 0 {
		return licenseRef(line, texts, refs), true
	}
	return strings.Join(out, " "), true
}

// licenseID maps one short name to an SPDX id or a LicenseRef.
func licenseID(name string, texts map[string]string, refs map[string]License) string {
	if id, ok := debianLicenses[strings.ToLower(name)]; ok {
		return id
	}
	return licenseRef(name, texts, refs)
}

// licenseRef records name as a LicenseRef-… with its text.
func licenseRef(name string, texts map[string]string, refs map[string]License) string {
	id := "LicenseRef-" + strings.Trim(refRe.ReplaceAllString(name, "-"), "-")
	if id == "LicenseRef-" {
		id = "LicenseRef-unnamed"
	}
	text := strings.TrimSpace(texts[strings.ToLower(name)])
	if text == "" {
		text = "The license named " + name + " in the package's Debian copyright file (its text is not given there)."
	}
	refs[id] = License{ID: id, Name: name, Text: text}
	return id
}

// paragraphs splits a deb822 file into lower-cased field maps.
// Continuation lines keep their text, " ." lines become empty lines.
func paragraphs(s string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur, last = map[string]string{}, ""
		case line[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				continue
			}
			t := strings.TrimSpace(line)
			if t == "." {
				t = ""
			}
			cur[last] += "\n" + t
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur[last] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
