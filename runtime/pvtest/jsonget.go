package pvtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoValue is returned by JSONGet when the path leads nowhere.
var ErrNoValue = errors.New("no value at path")

// JSONGet returns the value at path in the JSON document data, for the
// json_get shell helper. path elements are separated by "/": an object
// key, an array index, or "[key=value]" (the first array element whose
// string field key equals value). Strings come back raw, anything else as
// compact JSON; "" is the whole document.
func JSONGet(data []byte, path string) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("parse JSON: %w", err)
	}
	if path != "" {
		for _, el := range splitPath(path) {
			next, err := step(v, el)
			if err != nil {
				return "", fmt.Errorf("%w: %s: %w", ErrNoValue, path, err)
			}
			v = next
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func step(v any, el string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		n, ok := x[el]
		if !ok {
			return nil, fmt.Errorf("no key %q", el)
		}
		return n, nil
	case []any:
		if inner, ok := strings.CutPrefix(el, "["); ok && strings.HasSuffix(inner, "]") {
			k, want, ok := strings.Cut(strings.TrimSuffix(inner, "]"), "=")
			if !ok {
				return nil, fmt.Errorf("selector %q is not [key=value]", el)
			}
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					if s, ok := m[k].(string); ok && s == want {
						return m, nil
					}
				}
			}
			return nil, fmt.Errorf("no element with %s=%q", k, want)
		}
		i, err := strconv.Atoi(el)
		if err != nil || i < 0 || i >= len(x) {
			return nil, fmt.Errorf("index %q out of range (length %d)", el, len(x))
		}
		return x[i], nil
	}
	return nil, fmt.Errorf("cannot take %q of a scalar", el)
}

// splitPath splits at "/" outside of [...] selectors, so that
// "[name=locals/a]/status" is two elements.
func splitPath(p string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		case '/':
			if depth == 0 {
				out = append(out, p[start:i])
				start = i + 1
			}
		}
	}
	return append(out, p[start:])
}
