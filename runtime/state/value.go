package state

import (
	"fmt"
	"strconv"
)

// fieldError is a problem with one field inside a state value; Error()
// is "<field>: <msg>".
type fieldError struct {
	field, msg string
	kind       error
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func (e *fieldError) Unwrap() error { return e.kind }

// invalid returns an ErrInvalid problem for field.
func invalid(field fp, format string, args ...any) error {
	return &fieldError{field: field.String(), msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// fp is the path of a field inside a state value, such as
// "storage.v.persistence" or "logs[0].file". It is only turned into a
// string when a problem is reported, so that valid input does not pay for
// it.
type fp struct {
	parts [4]fpPart
	n     int
}

// fpPart is one member name, optionally followed by an element index.
type fpPart struct {
	name string
	idx  int // element index + 1; 0 when not an element
}

// top returns the path of a member of the document itself.
func top(name string) fp { return fp{parts: [4]fpPart{{name: name}}, n: 1} }

// String returns the dotted path.
func (f fp) String() string {
	if f.n == 1 && f.parts[0].idx == 0 {
		return f.parts[0].name
	}
	var b []byte
	for _, p := range f.parts[:f.n] {
		if p.name != "" {
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, p.name...)
		}
		if p.idx > 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(p.idx-1), 10)
			b = append(b, ']')
		}
	}
	return string(b)
}

// join returns the path of member child of parent.
func join(parent fp, child string) fp {
	if parent.n == len(parent.parts) {
		parent = top(parent.String())
	}
	parent.parts[parent.n] = fpPart{name: child}
	parent.n++
	return parent
}

// index returns the path of element i of parent.
func index(parent fp, i int) fp {
	if parent.n > 0 && parent.parts[parent.n-1].idx == 0 {
		parent.parts[parent.n-1].idx = i + 1
		return parent
	}
	if parent.n == len(parent.parts) {
		parent = top(parent.String())
	}
	parent.parts[parent.n] = fpPart{idx: i + 1}
	parent.n++
	return parent
}

// The helpers below read canonical JSON produced by Canonical, so they
// only need to tell the value kinds apart.

// asMembers returns an iterator over the members of a canonical object,
// and whether raw is an object at all.
func asMembers(raw []byte) (memberIter, bool) {
	if len(raw) < 2 || raw[0] != '{' {
		return memberIter{}, false
	}
	return members(raw), true
}

// members returns an iterator over the members of a canonical object.
func members(raw []byte) memberIter { return memberIter{raw: raw, i: 1} }

// memberIter walks the members of a canonical object without allocating:
// for it := members(raw); it.next(); { use it.cur }.
type memberIter struct {
	raw []byte
	i   int
	cur member
}

// next advances to the next member and reports whether there is one.
func (it *memberIter) next() bool {
	raw, i := it.raw, it.i
	if i >= len(raw) || (raw[i-1] != '{' && raw[i-1] != ',') {
		return false
	}
	nend := skipCanon(raw, i)
	name, ok := asString(raw[i:nend])
	if !ok || nend >= len(raw) || raw[nend] != ':' {
		return false
	}
	vend := skipCanon(raw, nend+1)
	it.cur = member{name: name, val: raw[nend+1 : vend]}
	it.i = vend + 1
	return true
}

// skipCanon returns the end of the canonical value that starts at raw[i].
func skipCanon(raw []byte, i int) int {
	depth := 0
	for i < len(raw) {
		switch raw[i] {
		case '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case ',', ':':
			i++
		default:
			for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ':' {
				i++
			}
		}
		if depth <= 0 {
			return i
		}
	}
	return i
}

func asString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// Fast path: nothing escaped.
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		if v := interned(inner); v != "" {
			return v, true
		}
		return string(inner), true
	}
	d := decoder{data: raw}
	s, err := d.str()
	return s, err == nil && d.pos == len(raw)
}

func asBool(raw []byte) (bool, bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// asNonNegInt accepts a canonical integer ≥ 0 that fits an int.
func asNonNegInt(raw []byte) (int, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return 0, false
	}
	n, err := strconv.Atoi(string(raw))
	return n, err == nil
}

// asNumber accepts any JSON number.
func asNumber(raw []byte) (float64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// asArray returns an iterator over the elements of a canonical array,
// and whether raw is an array at all.
func asArray(raw []byte) (elemIter, bool) {
	if len(raw) < 2 || raw[0] != '[' {
		return elemIter{}, false
	}
	return elemIter{raw: raw, pos: 1, i: -1}, true
}

// elemIter walks the elements of a canonical array without allocating:
// for it := els; it.next(); { use it.i and it.cur }.
type elemIter struct {
	raw []byte
	pos int
	i   int
	cur []byte
}

// next advances to the next element and reports whether there is one.
func (it *elemIter) next() bool {
	raw, p := it.raw, it.pos
	if p >= len(raw) || raw[p] == ']' || (raw[p-1] != '[' && raw[p-1] != ',') {
		return false
	}
	end := skipCanon(raw, p)
	it.cur, it.i, it.pos = raw[p:end], it.i+1, end+1
	return true
}

// count returns the number of elements left.
func (it elemIter) count() int {
	n := 0
	for it.next() {
		n++
	}
	return n
}

// stringField reads a string field or reports it.
func stringField(field fp, raw []byte) (string, error) {
	s, ok := asString(raw)
	if !ok {
		return "", invalid(field, "must be a string")
	}
	return s, nil
}

// stringArray reads an array of strings.
func stringArray(field fp, raw []byte) ([]string, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of strings")
	}
	out := make([]string, 0, els.count())
	for it := els; it.next(); {
		i, el := it.i, it.cur
		s, ok := asString(el)
		if !ok {
			return nil, invalid(index(field, i), "must be a string")
		}
		out = append(out, s)
	}
	return out, nil
}

// internTable holds frequent setting values, shared instead of copied.
var internTable = func() map[string]string {
	m := make(map[string]string)
	for _, v := range []string{
		"lxc", RestartSystem, RestartContainer, GoalMounted, GoalStarted, GoalReady,
		RecoveryNo, RecoveryAlways, RecoveryOnFailure, RecoveryUnlessStopped,
		BackoffReboot, BackoffNever, "permanent", "revision", "boot", "host", "pool",
		"lxc.container.conf", "root.squashfs", "data", "root", "platform", "app",
		"mgmt", "nobody", "yes", "no",
		// Member names of the documents Parse reads.
		"#spec", "name", "type", "runlevel", "automodfw", "group", "restart_policy",
		"status_goal", "roles", "auto_recovery", "network", "config", "share",
		"root-volume", "volumes", "logs", "storage", "drivers", "services", "exports",
		"dev-log", "exec", "max_retries", "retry_delay", "backoff_factor", "reset_window",
		"stable_timeout", "backoff_policy", "mode", "hostname", "ip", "mac", "interfaces",
		"persistence", "disk", "required", "optional", "manual", "role", "interface",
		"target", "socket", "file", "maxsize", "truncate", "console", "description",
		"timeout", "disks", "groups", "protected", "signature", "alg", "typ", "jwk",
		"x5c", "pvs", "include", "exclude", "linux", "initrd", "fdt", "fit", "rpiab",
		"modules", "firmware", "addons", "all", "pvs@2",
	} {
		m[v] = v
	}
	return m
}()

// interned returns the shared copy of b, or "" when b is not frequent.
func interned(b []byte) string {
	return internTable[string(b)] // the conversion does not allocate
}
