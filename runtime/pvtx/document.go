package pvtx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrBadJSON reports a state document that is not a valid pvtx input.
var ErrBadJSON = errors.New("bad state json")

// Doc is a state JSON handled the way pvtx does: a sorted list of top-level
// keys whose values are kept as the exact JSON text they had in the input
// (signatures cover that text, so it is never re-formatted). "#spec" is not
// stored; Bytes always emits it first.
type Doc struct {
	entries []entry // sorted by key (byte order, like strcmp), unique
}

type entry struct {
	key string
	val json.RawMessage
}

// EmptyDoc returns the state that holds only "#spec".
func EmptyDoc() *Doc { return &Doc{} }

// ParseDoc parses a state JSON object. Every key must be a clean relative
// path (state.ValidKey), keys must be unique and "#spec", when present,
// must be state.Spec. A missing "#spec" is accepted (package fragments);
// the output always carries it.
func ParseDoc(data []byte) (*Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadJSON)
	}
	d := &Doc{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadJSON, key, err)
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: %q: duplicate key", ErrBadJSON, key)
		}
		seen[key] = true
		if key == "#spec" {
			var spec string
			if err := json.Unmarshal(val, &spec); err != nil || spec != state.Spec {
				return nil, fmt.Errorf("%w: #spec: got %s, want %q", ErrBadJSON, val, state.Spec)
			}
			continue
		}
		if err := state.ValidKey(key); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
		}
		d.entries = append(d.entries, entry{key, val})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the object", ErrBadJSON)
	}
	sort.Slice(d.entries, func(i, j int) bool { return d.entries[i].key < d.entries[j].key })
	return d, nil
}

// Keys returns the keys without "#spec", sorted.
func (d *Doc) Keys() []string {
	keys := make([]string, len(d.entries))
	for i, e := range d.entries {
		keys[i] = e.key
	}
	return keys
}

// Len returns the number of keys without "#spec".
func (d *Doc) Len() int { return len(d.entries) }

// Get returns the raw JSON text of key.
func (d *Doc) Get(key string) (json.RawMessage, bool) {
	i := sort.Search(len(d.entries), func(i int) bool { return d.entries[i].key >= key })
	if i < len(d.entries) && d.entries[i].key == key {
		return d.entries[i].val, true
	}
	return nil, false
}

// Object returns the sha256 a key points to, if its value is a sha string.
func (d *Doc) Object(key string) (string, bool) {
	v, ok := d.Get(key)
	if !ok {
		return "", false
	}
	return objectSha(v)
}

func objectSha(v json.RawMessage) (string, bool) {
	if len(v) != 66 || v[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil || !state.IsSha(s) {
		return "", false
	}
	return s, true
}

// Objects returns the distinct shas referenced by the document, sorted.
func (d *Doc) Objects() []string {
	set := map[string]bool{}
	for _, e := range d.entries {
		if sha, ok := objectSha(e.val); ok {
			set[sha] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Bytes returns the document as pvtx writes it:
// {"#spec":"pantavisor-service-system@1","<key>":<raw value>,…} with the
// keys in byte order and every value exactly as it was read.
func (d *Doc) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(`{"#spec":"` + state.Spec + `"`)
	for _, e := range d.entries {
		b.WriteByte(',')
		writeKey(&b, e.key)
		b.WriteByte(':')
		b.Write(e.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeKey(b *bytes.Buffer, k string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(k)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends '\n'
}

// clone returns a copy sharing the (immutable) values.
func (d *Doc) clone() *Doc {
	return &Doc{entries: append([]entry(nil), d.entries...)}
}
