package state

import (
	"encoding/base64"
	"strings"
)

// pvs2Spec marks a pvs@2 signature document in canonical bytes.
var pvs2Spec = []byte(`"#spec":"pvs@2"`)

// parseSignature reads an inline document whose "#spec" is "pvs@2"
// (normally _sigs/<name>.json); other documents are left alone.
func (s *State) parseSignature(k string) error {
	if _, ok := s.objects[k]; ok {
		return nil
	}
	ms, ok := asMembers(s.vals[k])
	if !ok {
		return nil
	}
	var spec string
	for it := ms; it.next(); {
		m := it.cur
		if m.name == "#spec" {
			spec, _ = asString(m.val)
		}
	}
	if spec != "pvs@2" {
		return nil
	}
	sig := &Signature{Key: k}
	for it := ms; it.next(); {
		m := it.cur
		var err error
		switch m.name {
		case "protected":
			sig.Protected, err = stringField(top(m.name), m.val)
		case "signature":
			sig.Sig, err = stringField(top(m.name), m.val)
		}
		if err != nil {
			return &Error{Key: k, Err: err}
		}
	}
	if sig.Protected == "" {
		return &Error{Key: k, Err: invalid(top("protected"), "missing")}
	}
	if sig.Sig == "" {
		return &Error{Key: k, Err: invalid(top("signature"), "missing")}
	}
	if _, err := decodeB64URL(sig.Sig); err != nil {
		return &Error{Key: k, Err: invalid(top("signature"), "not base64url: %v", err)}
	}
	hdr, err := decodeB64URL(sig.Protected)
	if err != nil {
		return &Error{Key: k, Err: invalid(top("protected"), "not base64url: %v", err)}
	}
	if sig.Header, err = parseSigHeader(hdr); err != nil {
		return &Error{Key: k, Err: err}
	}
	s.sigs[k] = sig
	return nil
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(v string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
}

// parseSigHeader reads a decoded pvs@2 protected header.
func parseSigHeader(hdr []byte) (SigHeader, error) {
	var h SigHeader
	canon, err := Canonical(hdr)
	if err != nil {
		return h, invalid(top("protected"), "not JSON: %v", err)
	}
	ms, ok := asMembers(canon)
	if !ok {
		return h, invalid(top("protected"), "must be a JSON object")
	}
	for it := ms; it.next(); {
		m := it.cur
		f := join(top("protected"), m.name)
		switch m.name {
		case "alg":
			h.Alg, err = stringField(f, m.val)
			if err == nil {
				switch h.Alg {
				case "RS256", "ES256", "ES384", "ES512":
				default:
					err = invalid(f, "unsupported algorithm %q (want RS256, ES256, ES384 or ES512)", h.Alg)
				}
			}
		case "typ":
			h.Typ, err = stringField(f, m.val)
		case "jwk":
			if _, ok := asMembers(m.val); !ok {
				err = invalid(f, "must be an object")
			}
			h.JWK = m.val
		case "x5c":
			h.X5C, err = stringArray(f, m.val)
		case "pvs":
			pm, ok := asMembers(m.val)
			if !ok {
				err = invalid(f, "must be an object")
				break
			}
			for it := pm; it.next(); {
				p := it.cur
				switch p.name {
				case "include":
					h.Include, err = stringArray(join(f, p.name), p.val)
				case "exclude":
					h.Exclude, err = stringArray(join(f, p.name), p.val)
				}
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			return h, err
		}
	}
	if h.Alg == "" {
		return h, invalid(top("protected.alg"), "missing")
	}
	return h, nil
}
