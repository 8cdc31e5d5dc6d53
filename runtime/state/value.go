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
func invalid(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// join builds a nested field name.
func join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// index builds an array element field name.
func index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// The helpers below read canonical JSON produced by Canonical, so they
// only need to tell the value kinds apart.

// asMembers splits a canonical object into its members.
func asMembers(raw []byte) ([]member, bool) {
	if len(raw) < 2 || raw[0] != '{' {
		return nil, false
	}
	if raw[1] == '}' {
		return []member{}, true
	}
	ms := make([]member, 0, 8)
	for i := 1; i < len(raw) && (raw[i-1] == '{' || raw[i-1] == ','); {
		nend := skipCanon(raw, i)
		name, ok := asString(raw[i:nend])
		if !ok || nend >= len(raw) || raw[nend] != ':' {
			return nil, false
		}
		vend := skipCanon(raw, nend+1)
		ms = append(ms, member{name: name, val: raw[nend+1 : vend]})
		i = vend + 1
	}
	return ms, true
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

// asArray splits a canonical array into its canonical elements.
func asArray(raw []byte) ([][]byte, bool) {
	if len(raw) < 2 || raw[0] != '[' {
		return nil, false
	}
	if raw[1] == ']' {
		return [][]byte{}, true
	}
	out := make([][]byte, 0, 4)
	for i := 1; i < len(raw) && (raw[i-1] == '[' || raw[i-1] == ','); {
		end := skipCanon(raw, i)
		out = append(out, raw[i:end])
		i = end + 1
	}
	return out, true
}

// stringField reads a string field or reports it.
func stringField(field string, raw []byte) (string, error) {
	s, ok := asString(raw)
	if !ok {
		return "", invalid(field, "must be a string")
	}
	return s, nil
}

// stringArray reads an array of strings.
func stringArray(field string, raw []byte) ([]string, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of strings")
	}
	out := make([]string, 0, len(els))
	for i, el := range els {
		s, ok := asString(el)
		if !ok {
			return nil, invalid(index(field, i), "must be a string")
		}
		out = append(out, s)
	}
	return out, nil
}
