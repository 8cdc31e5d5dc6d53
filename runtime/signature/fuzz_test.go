package signature

import (
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// FuzzVerify feeds arbitrary protected headers, signature bytes and raw
// signature documents to Verify: it must never panic, and every failure
// must be one of the two sentinels.
func FuzzVerify(f *testing.F) {
	root := issue(f, nil, "root", true, nil)
	leaf := issue(f, &root, "acme", false, nil)
	key := testEC(f, elliptic.P256())
	etc := trustDir(f, map[string][]byte{
		"ca-certificates.crt":     certPEM(root.cert),
		"ca-oem-certificates.crt": certPEM(root.cert),
		"pub.pem":                 pubPEM(f, key.Public()),
	})
	v, err := New(Options{Mode: "strict", EtcDir: etc, OEMName: "acme"})
	if err != nil {
		f.Fatal(err)
	}

	base := fixture()
	seed := func(d json.RawMessage) {
		var doc sigDoc
		if err := json.Unmarshal(d, &doc); err != nil {
			f.Fatal(err)
		}
		h, _ := base64.RawURLEncoding.DecodeString(doc.Protected)
		s, _ := base64.RawURLEncoding.DecodeString(doc.Signature)
		f.Add(h, s, []byte(nil))
		f.Add([]byte(nil), []byte(nil), []byte(d))
	}
	for _, g := range [][2][]string{{{"**"}, nil}, {{"app/**"}, {"app/src.json"}}} {
		d, err := Sign(parse(f, base), "f", g[0], g[1], key, nil)
		if err != nil {
			f.Fatal(err)
		}
		seed(d)
		d, err = Sign(parse(f, base), "f", g[0], g[1], leaf.key, nil)
		if err != nil {
			f.Fatal(err)
		}
		seed(d)
	}
	f.Add([]byte(`{"alg":"ES256","typ":"PVS","x5c":["AAAA"],"pvs":{"include":["[","{a,"],"exclude":null}}`), []byte{1, 2}, []byte(nil))
	f.Add([]byte(`{"alg":"RS256","typ":"PVS"}`), []byte{}, []byte(nil))
	f.Add([]byte(nil), []byte(nil), []byte(`{"#spec":"pvs@2","protected":"e30","signature":"AA=="}`))

	f.Fuzz(func(t *testing.T, header, sig, doc []byte) {
		raw := json.RawMessage(doc)
		if len(doc) == 0 {
			var err error
			raw, err = json.Marshal(map[string]string{
				"#spec":     "pvs@2",
				"protected": base64.RawURLEncoding.EncodeToString(header),
				"signature": base64.RawURLEncoding.EncodeToString(sig),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !json.Valid(raw) {
			return
		}
		m := clone(base)
		m[SigKey("f")] = raw
		b, err := json.Marshal(m)
		if err != nil {
			return
		}
		st, err := state.Parse(b)
		if err != nil {
			return
		}
		err = v.Verify(st)
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotCovered) {
			t.Errorf("Verify = %v, want nil, ErrInvalid or ErrNotCovered", err)
		}
	})
}
