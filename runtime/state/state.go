package state

import (
	"encoding/json"
	"fmt"
	"strings"
)

// State is a parsed, validated state JSON. It is immutable: accessors
// return shared slices and maps that callers must not modify.
type State struct {
	vals      map[string][]byte // key → canonical value, including "#spec"
	keys      []string          // sorted, without "#spec"
	objects   map[string]string // key → sha
	platforms []*Platform       // sorted by name
	byName    map[string]*Platform
	byDir     map[string]*Platform
	bsp       *BSP
	device    *Device
	groups    []Group
	drivers   *Drivers
	sigs      map[string]*Signature
	assign    map[string]string // platform name → group name
	warnings  []string
	canon     []byte
}

// specRaw is the canonical "#spec" value.
var specRaw = []byte(`"` + Spec + `"`)

// New returns a state holding only "#spec".
func New() *State {
	s := &State{
		vals:    map[string][]byte{"#spec": specRaw},
		objects: map[string]string{},
		byName:  map[string]*Platform{},
		byDir:   map[string]*Platform{},
		sigs:    map[string]*Signature{},
	}
	s.canon = s.serialize()
	return s
}

// Parse parses and validates a state JSON document. Problems are reported
// as *Error naming the state key, wrapping one of the package sentinels.
func Parse(data []byte) (*State, error) {
	canon, ms, err := topLevel(data)
	if err != nil {
		return nil, err
	}
	s := New()
	s.vals = make(map[string][]byte, len(ms))
	s.keys = make([]string, 0, len(ms))
	for _, m := range ms {
		s.vals[m.name] = m.val
		if m.name != "#spec" {
			s.keys = append(s.keys, m.name) // members come sorted
		}
	}
	if err := s.build(); err != nil {
		return nil, err
	}
	s.canon = canon
	return s, nil
}

// topLevel canonicalizes the state object and returns its bytes and its
// members, attributing problems inside a value to its key.
func topLevel(data []byte) ([]byte, []member, error) {
	d := decoder{data: data, top: true}
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, nil, &Error{Err: fmt.Errorf("%w: state must be a JSON object", ErrSyntax)}
	}
	out, spans, err := d.object(make([]byte, 0, len(data)))
	if err == nil {
		d.skipSpace()
		if d.pos != len(d.data) {
			err = d.errorf("unexpected data after the state object")
		}
	}
	if err != nil {
		if se, ok := err.(*Error); ok {
			return nil, nil, se
		}
		return nil, nil, &Error{Err: err}
	}
	ms := make([]member, len(spans))
	for i, sp := range spans {
		ms[i] = member{name: spanName(out, sp), val: out[sp.vstart:sp.end:sp.end]}
	}
	return out, ms, nil
}

// build validates the keys and values of s.vals and fills the parsed views.
func (s *State) build() error {
	spec, ok := s.vals["#spec"]
	if !ok {
		return &Error{Key: "#spec", Err: fmt.Errorf("%w: missing, want %q", ErrSpec, Spec)}
	}
	if v, _ := asString(spec); v != Spec {
		return &Error{Key: "#spec", Err: fmt.Errorf("%w: got %s, want %q", ErrSpec, spec, Spec)}
	}
	s.objects = make(map[string]string)
	for _, k := range s.keys {
		if err := ValidKey(k); err != nil {
			return &Error{Key: k, Err: err}
		}
		if err := s.checkParents(k); err != nil {
			return err
		}
		v := s.vals[k]
		str, isStr := asString(v)
		switch {
		case isStr && IsSha(str):
			s.objects[k] = str
		case !strings.HasSuffix(k, ".json"):
			if isStr {
				return &Error{Key: k, Err: fmt.Errorf("%w, got %q", ErrBadSha, str)}
			}
			return &Error{Key: k, Err: fmt.Errorf("%w, got a JSON %s (only *.json keys may hold inline JSON)", ErrBadSha, kindOf(v))}
		}
	}
	if err := s.parseDocuments(); err != nil {
		return err
	}
	return nil
}

// checkParents rejects a key below a path that is itself a key (a file
// cannot also be a directory), and _config keys without a path inside
// the container.
func (s *State) checkParents(k string) error {
	for i := 0; i < len(k); i++ {
		if k[i] != '/' {
			continue
		}
		if _, ok := s.vals[k[:i]]; ok {
			return &Error{Key: k, Err: fmt.Errorf("%w: %q is also a file in the state", ErrBadKey, k[:i])}
		}
	}
	if rest, ok := strings.CutPrefix(k, "_config/"); ok && !strings.Contains(rest, "/") || k == "_config" {
		return &Error{Key: k, Err: fmt.Errorf("%w: _config entries need the form _config/<container>/<path>", ErrBadKey)}
	}
	return nil
}

// kindOf names the JSON kind of a canonical value.
func kindOf(v []byte) string {
	switch {
	case len(v) == 0:
		return "nothing"
	case v[0] == '{':
		return "object"
	case v[0] == '[':
		return "array"
	case v[0] == '"':
		return "string"
	case v[0] == 't' || v[0] == 'f':
		return "boolean"
	case v[0] == 'n':
		return "null"
	}
	return "number"
}

// inlineDoc returns the canonical bytes of an inline JSON object document, or an
// error when the key holds an object reference or a non-object.
func (s *State) inlineDoc(k string) ([]byte, error) {
	if _, ok := s.objects[k]; ok {
		return nil, &Error{Key: k, Err: invalid(top(""), "must be inline JSON, not an object reference")}
	}
	if _, ok := asMembers(s.vals[k]); !ok {
		return nil, &Error{Key: k, Err: invalid(top(""), "must be a JSON object, got a %s", kindOf(s.vals[k]))}
	}
	return s.vals[k], nil
}

// serialize returns the canonical bytes of the whole state, built from
// the sorted keys and "#spec".
func (s *State) serialize() []byte {
	n := 2
	for k, v := range s.vals {
		n += len(k) + len(v) + 4
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	add := func(k string) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendString(out, k)
		out = append(out, ':')
		out = append(out, s.vals[k]...)
	}
	spec := false
	for _, k := range s.keys {
		if !spec && k > "#spec" {
			add("#spec")
			spec = true
		}
		add(k)
	}
	if !spec {
		add("#spec")
	}
	return append(out, '}')
}

// Keys returns the state keys in sorted order, without "#spec".
func (s *State) Keys() []string { return s.keys }

// Raw returns the canonical bytes of the value of key.
func (s *State) Raw(key string) (json.RawMessage, bool) {
	v, ok := s.vals[key]
	return v, ok
}

// Object returns the sha of an object entry.
func (s *State) Object(key string) (sha string, ok bool) {
	sha, ok = s.objects[key]
	return sha, ok
}

// Objects returns every object entry, path → sha.
func (s *State) Objects() map[string]string { return s.objects }

// Inline returns every inline (non-sha) value, without "#spec".
func (s *State) Inline() map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(s.keys)-len(s.objects))
	for _, k := range s.keys {
		if _, ok := s.objects[k]; !ok {
			out[k] = s.vals[k]
		}
	}
	return out
}

// Canonical returns the canonical state JSON, byte-identical to pvr's
// .pvr/json. The slice is shared; do not modify it.
func (s *State) Canonical() []byte { return s.canon }

// Platforms returns the platforms sorted by name.
func (s *State) Platforms() []*Platform { return s.platforms }

// Platform returns the platform called name, or nil.
func (s *State) Platform(name string) *Platform { return s.byName[name] }

// PlatformOwning returns the platform that a state path belongs to, or nil:
// paths under a platform directory (the first element of its run.json
// key) belong to it; "_config/<x>/…" belongs to the platform named x, or
// failing that the one in directory x.
func (s *State) PlatformOwning(path string) *Platform {
	o := Owner(path)
	if o == "" {
		return nil
	}
	if strings.HasPrefix(path, "_config/") {
		if p := s.byName[o]; p != nil {
			return p
		}
	}
	return s.byDir[o]
}

// BSP returns bsp/run.json, or nil when the state has none.
func (s *State) BSP() *BSP { return s.bsp }

// Groups returns the explicit groups of device.json or groups.json, or
// nil when there are none (the caller then uses DefaultGroups).
func (s *State) Groups() []Group { return s.groups }

// Device returns device.json (or the legacy groups.json/disks.json
// content), or nil when none of them is present.
func (s *State) Device() *Device { return s.device }

// Drivers returns bsp/drivers.json, or nil.
func (s *State) Drivers() *Drivers { return s.drivers }

// Warnings returns what Parse accepted but ignored, one line per item in
// key order ("app/run.json: foo: unknown key ignored",
// "bsp/run.json: initrd_config: ignored (not supported)", skipped
// disks_v3 entries, legacy files shadowed by device.json), for the
// caller to log.
func (s *State) Warnings() []string { return s.warnings }

// warner collects warnings about one state key.
type warner struct {
	key  string
	list *[]string
}

// warner returns the warning collector for key k.
func (s *State) warner(k string) warner { return warner{key: k, list: &s.warnings} }

// add records a warning about field f.
func (w warner) add(f fp, format string, args ...any) {
	if w.list == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if p := f.String(); p != "" {
		msg = p + ": " + msg
	}
	*w.list = append(*w.list, w.key+": "+msg)
}

// Signatures returns the pvs@2 signatures by state key.
func (s *State) Signatures() map[string]*Signature { return s.sigs }

// ServiceProvider returns the platform that exports the xconnect service r
// asks for, and the export: the first platform in name order whose
// services.json has a service of r's name and, when r names one, r's type.
// ok is false when no platform of the state exports it.
func (s *State) ServiceProvider(r ServiceRequirement) (p *Platform, e ServiceExport, ok bool) {
	for _, p := range s.platforms {
		for _, e := range p.Provides {
			if e.Name == r.Name && (r.Type == "" || r.Type == e.Type) {
				return p, e, true
			}
		}
	}
	return nil, ServiceExport{}, false
}

// MissingServices returns the required xconnect services of p that no
// platform of the state exports ("<name> (<type>)"), nil when there are none.
func (s *State) MissingServices(p *Platform) []string {
	if p.Services == nil {
		return nil
	}
	var out []string
	for _, r := range p.Services.Required {
		if _, _, ok := s.ServiceProvider(r); !ok {
			out = append(out, fmt.Sprintf("%s (%s)", r.Name, r.Type))
		}
	}
	return out
}
