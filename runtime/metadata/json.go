package metadata

import (
	"bytes"
	"encoding/json"
)

// MarshalJSON renders the GET /user-meta and /device-meta body: one object
// with the keys newest first. A value that parses as a JSON object or array
// is embedded (compacted); anything else is a JSON string.
func (s *Store) MarshalJSON() ([]byte, error) {
	return MarshalKVs(s.List()), nil
}

// MarshalKVs renders kvs, in order, in the GET /user-meta shape.
func MarshalKVs(kvs []KV) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonString(kv.Key))
		b.WriteByte(':')
		b.Write(Value(kv.Value))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Value renders one metadata value as JSON: an object or array is embedded
// compacted, anything else becomes a string.
func Value(v []byte) []byte {
	t := bytes.TrimSpace(v)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		var c bytes.Buffer
		if json.Compact(&c, t) == nil {
			return c.Bytes()
		}
	}
	return jsonString(string(v))
}

// jsonString encodes s as a JSON string without HTML escaping (invalid
// UTF-8 becomes U+FFFD).
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
