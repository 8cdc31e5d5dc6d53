package bootloader

import (
	"bytes"
	"fmt"
)

// nulEnv is U-Boot's binary env import format: "key=value" entries, each
// NUL-terminated; the list ends at an empty entry ("\0\0") or at erased
// flash ("\xff\xff"). Order is kept so a rewrite changes only what it must.
type nulEnv struct {
	keys []string
	vals map[string]string
}

// parseNulEnv decodes at most the first limit bytes of b.
func parseNulEnv(b []byte, limit int) *nulEnv {
	if limit > 0 && len(b) > limit {
		b = b[:limit]
	}
	e := &nulEnv{vals: map[string]string{}}
	for len(b) > 0 {
		if b[0] == 0 || b[0] == 0xff {
			break
		}
		end := bytes.IndexByte(b, 0)
		var entry []byte
		if end < 0 {
			entry, b = b, nil // unterminated last entry: take what is there
		} else {
			entry, b = b[:end], b[end+1:]
		}
		k, v, ok := bytes.Cut(entry, []byte("="))
		if !ok || len(k) == 0 {
			continue // not an assignment: U-Boot ignores it too
		}
		e.set(string(k), string(v))
	}
	return e
}

func (e *nulEnv) get(key string) string { return e.vals[key] }

// set replaces key's entry (exact name: upstream's prefix match also
// dropped pv_trying when setting pv_try) or appends it.
func (e *nulEnv) set(key, value string) {
	if _, ok := e.vals[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.vals[key] = value
}

// encode writes the entries, the terminating empty entry, and pads with
// fill up to size (no padding when size is smaller than the content).
func (e *nulEnv) encode(size int, fill byte) ([]byte, error) {
	var b bytes.Buffer
	for _, k := range e.keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(e.vals[k])
		b.WriteByte(0)
	}
	b.WriteByte(0)
	if size > 0 && b.Len() > size {
		return nil, fmt.Errorf("env needs %d bytes, has room for %d", b.Len(), size)
	}
	for b.Len() < size {
		b.WriteByte(fill)
	}
	return b.Bytes(), nil
}
