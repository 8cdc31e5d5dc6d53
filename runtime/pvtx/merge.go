package pvtx

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// pattern is one key matcher of a remove operation.
type pattern struct {
	s      string
	prefix bool // plain string prefix (a glob cut at its first wildcard)
}

// match reports whether key is selected: a plain prefix for cut globs, the
// key itself or anything below it otherwise.
func (p pattern) match(key string) bool {
	if p.prefix {
		return strings.HasPrefix(key, p.s)
	}
	return key == p.s || (strings.HasPrefix(key, p.s) && key[len(p.s)] == '/')
}

// globPattern turns a pvs include/exclude glob into a pattern: cut at the
// first wildcard and matched as a plain prefix, or, without wildcards, the
// path itself.
func globPattern(g string) pattern {
	if i := strings.IndexAny(g, "*?["); i >= 0 {
		return pattern{s: g[:i], prefix: true}
	}
	return pattern{s: g}
}

const sigsPrefix = "_sigs/"

// sigGlobs returns the include and exclude globs of a pvs signature value
// (they live in the base64url "protected" header). Anything malformed
// yields none: a broken signature covers nothing.
func sigGlobs(v json.RawMessage) []string {
	var sig struct {
		Protected string `json:"protected"`
	}
	if json.Unmarshal(v, &sig) != nil || sig.Protected == "" {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(sig.Protected, "="))
	if err != nil {
		return nil
	}
	var hdr struct {
		PVS struct {
			Include []string `json:"include"`
			Exclude []string `json:"exclude"`
		} `json:"pvs"`
	}
	if json.Unmarshal(raw, &hdr) != nil {
		return nil
	}
	return append(hdr.PVS.Include, hdr.PVS.Exclude...)
}

// sigFor returns the signature key that belongs to part: "_sigs/<S>" where
// S, with a ".json" suffix removed, equals part after stripping a leading
// "_config/" or "_sigs/" (so "nginx", "_config/nginx" and
// "_sigs/nginx.json" all find "_sigs/nginx.json").
//
// Upstream takes the first signature whose name merely starts with the
// part, so removing "nginx" could pick "_sigs/nginx-proxy.json" (it sorts
// first); we require the whole name.
func (d *Doc) sigFor(part string) (string, json.RawMessage, bool) {
	p := part
	if s, ok := strings.CutPrefix(p, "_config/"); ok {
		p = s
	} else if s, ok := strings.CutPrefix(p, sigsPrefix); ok {
		p = s
	}
	for _, e := range d.sigEntries() {
		s := e.key[len(sigsPrefix):]
		if s == p || strings.TrimSuffix(s, ".json") == p {
			return e.key, e.val, true
		}
	}
	return "", nil, false
}

// sigEntries returns the "_sigs/…" entries (contiguous, since sorted).
func (d *Doc) sigEntries() []entry {
	var out []entry
	for _, e := range d.entries {
		if strings.HasPrefix(e.key, sigsPrefix) {
			out = append(out, e)
		}
	}
	return out
}

// Patterns returns the matchers of a remove of part: the part itself, and,
// if a signature belongs to it, the signature key and its include and
// exclude globs.
func (d *Doc) patterns(part string, c globCache) []pattern {
	pats := []pattern{{s: part}}
	if key, val, ok := d.sigFor(part); ok {
		if key != part {
			pats = append(pats, pattern{s: key})
		}
		pats = append(pats, c.get(val)...)
	}
	return pats
}

// globCache memoizes the decoded patterns of signature values during one
// Merge (decoding base64 and JSON per key and signature dominates
// otherwise).
type globCache map[string][]pattern

func (c globCache) get(v json.RawMessage) []pattern {
	if p, ok := c[string(v)]; ok {
		return p
	}
	var pats []pattern
	for _, g := range sigGlobs(v) {
		pats = append(pats, globPattern(g))
	}
	c[string(v)] = pats
	return pats
}

// allSigPatterns returns the globs of every signature in the document.
func (d *Doc) allSigPatterns(c globCache) []pattern {
	var pats []pattern
	for _, e := range d.sigEntries() {
		pats = append(pats, c.get(e.val)...)
	}
	return pats
}

func count(pats []pattern, key string) int {
	n := 0
	for _, p := range pats {
		if p.match(key) {
			n++
		}
	}
	return n
}

// Remove deletes a part from the document and returns the removed keys.
// A part is a container name ("nginx"), a config path ("_config/nginx"),
// a signature ("_sigs/nginx.json") or any key or directory.
//
// A key is deleted when n ≥ 1 of the part's patterns match it, unless
// m > n, where m is the number of patterns of all signatures in the
// document that match it: such a key is also covered by another signature
// and stays.
func (d *Doc) Remove(part string) []string {
	return d.remove(part, globCache{})
}

func (d *Doc) remove(part string, c globCache) []string {
	pats := d.patterns(part, c)
	var all []pattern
	var allDone bool
	var removed []string
	var kept []entry // allocated at the first removal
	for i, e := range d.entries {
		n := count(pats, e.key)
		if n >= 1 && !allDone {
			all, allDone = d.allSigPatterns(c), true
		}
		if n >= 1 && count(all, e.key) <= n {
			if removed == nil {
				kept = append(make([]entry, 0, len(d.entries)), d.entries[:i]...)
			}
			removed = append(removed, e.key)
			continue
		}
		if removed != nil {
			kept = append(kept, e)
		}
	}
	if removed != nil {
		d.entries = kept
	}
	return removed
}

// Merge adds src to the document: every key of src is first removed from
// the document (with the signature-aware rules of Remove), then the two
// sorted key lists are merged; on a key present in both, src wins.
func (d *Doc) Merge(src *Doc) {
	c := globCache{}
	for _, e := range src.entries {
		d.remove(e.key, c)
	}
	out := make([]entry, 0, len(d.entries)+len(src.entries))
	i, j := 0, 0
	for i < len(d.entries) || j < len(src.entries) {
		switch {
		case j == len(src.entries):
			out = append(out, d.entries[i])
			i++
		case i == len(d.entries):
			out = append(out, src.entries[j])
			j++
		case d.entries[i].key < src.entries[j].key:
			out = append(out, d.entries[i])
			i++
		case d.entries[i].key > src.entries[j].key:
			out = append(out, src.entries[j])
			j++
		default: // kept by the m > n rule; the new value wins
			out = append(out, src.entries[j])
			i++
			j++
		}
	}
	d.entries = out
}
