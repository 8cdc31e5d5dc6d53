package signature

import (
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

func TestPayloadGolden(t *testing.T) {
	st := parse(t, fixture())
	inc, exc := BSPGlobs()
	got, err := Payload(st, "", inc, exc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"#spec":"pantavisor-service-system@1","bsp/build.json":{"note":"a<b & ü","time":1.5E0},` +
		`"bsp/kernel.img":"` + sha1 + `","device.json":{}}`
	if string(got) != want {
		t.Errorf("Payload(bsp) =\n%s\nwant\n%s", got, want)
	}

	inc, exc = PartGlobs("app")
	got, err = Payload(st, SigKey("app"), inc, exc)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"_config/app/etc/x.conf":"` + sha3 + `","app/root.squashfs":"` + sha2 + `"}`
	if string(got) != want {
		t.Errorf("Payload(app) = %s, want %s", got, want)
	}
}

// TestPayloadIsCanonicalSelection checks the payload against pvr's recipe
// computed independently: canonical JSON of the map of selected pairs.
func TestPayloadIsCanonicalSelection(t *testing.T) {
	m := fixture()
	m["Zeta/ü.txt"] = json.RawMessage(`"` + sha1 + `"`)
	m["app/extra.json"] = json.RawMessage(`[3, {"b": 1e2, "a": "\u0001\"x\""}]`)
	m["_sigs/other.json"] = json.RawMessage(`{"#spec": "other@1"}`)
	st := parse(t, m)
	for _, globs := range [][2][]string{
		{{"**"}, nil},
		{{"**"}, {"bsp/**"}},
		{{"app/**", "Zeta/*"}, {"*/src.json"}},
		{{"#spec", "device.json"}, nil},
		{{"none"}, nil},
	} {
		sel := map[string]json.RawMessage{}
		for k, v := range m {
			if matchAny(globs[0], k) && !matchAny(globs[1], k) {
				sel[k] = v
			}
		}
		b, err := json.Marshal(sel)
		if err != nil {
			t.Fatal(err)
		}
		want, err := state.Canonical(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Payload(st, "", globs[0], globs[1])
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("Payload(%q) =\n%s\nwant\n%s", globs, got, want)
		}
	}
}

func TestSignShape(t *testing.T) {
	root := issue(t, nil, "root", true, nil)
	leaf := issue(t, &root, "signer", false, nil)
	m := fixture()
	inc, exc := PartGlobs("app")
	for _, tt := range []struct {
		name string
		key  crypto.Signer
		x5c  []*x509.Certificate
		kty  string
	}{
		{"rsa", testRSA(t), nil, "RSA"},
		{"ec with chain", leaf.key, []*x509.Certificate{leaf.cert, root.cert}, "EC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Sign(parse(t, m), "app", inc, exc, tt.key, tt.x5c)
			if err != nil {
				t.Fatal(err)
			}
			var d map[string]string
			if err := json.Unmarshal(doc, &d); err != nil {
				t.Fatal(err)
			}
			if len(d) != 3 || d["#spec"] != "pvs@2" || d["protected"] == "" || d["signature"] == "" {
				t.Errorf("Sign = %s, want {#spec: pvs@2, protected, signature}", doc)
			}
			if strings.ContainsAny(d["protected"]+d["signature"], "+/=") {
				t.Errorf("Sign = %s, want unpadded base64url", doc)
			}
			h := headerOf(t, doc)
			if h["typ"] != "PVS" {
				t.Errorf("typ = %v, want PVS", h["typ"])
			}
			if jwk, _ := h["jwk"].(map[string]any); jwk["kty"] != tt.kty {
				t.Errorf("jwk = %v, want kty %s", h["jwk"], tt.kty)
			}
			_, hasX5C := h["x5c"]
			if hasX5C != (tt.x5c != nil) {
				t.Errorf("x5c present = %v, want %v", hasX5C, tt.x5c != nil)
			}
			// The runtime's state parser reads it back as a signature.
			m2 := clone(m)
			m2[SigKey("app")] = doc
			sig := parse(t, m2).Signatures()[SigKey("app")]
			if sig == nil {
				t.Fatalf("state.Signatures()[%s] = nil", SigKey("app"))
			}
			if !reflect.DeepEqual(sig.Header.Include, inc) || !reflect.DeepEqual(sig.Header.Exclude, exc) || len(sig.Header.X5C) != len(tt.x5c) {
				t.Errorf("parsed header = %+v, want include %q exclude %q and %d x5c", sig.Header, inc, exc, len(tt.x5c))
			}
		})
	}
}

func TestSignJWKMatchesKey(t *testing.T) {
	key := testEC(t, elliptic.P521())
	doc, err := Sign(parse(t, fixture()), "x", []string{"**"}, nil, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	jwk := headerOf(t, doc)["jwk"].(map[string]any)
	x, _ := base64.RawURLEncoding.DecodeString(jwk["x"].(string))
	y, _ := base64.RawURLEncoding.DecodeString(jwk["y"].(string))
	if jwk["crv"] != "P-521" || len(x) != 66 || len(y) != 66 || key.X.Cmp(new(big.Int).SetBytes(x)) != 0 {
		t.Errorf("jwk = %v, want the P-521 key with 66-byte coordinates", jwk)
	}
}

func TestSignErrors(t *testing.T) {
	st := parse(t, fixture())
	key := testEC(t, elliptic.P256())
	other := issue(t, nil, "other", false, nil)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tt := range []struct {
		name string
		st   *state.State
		sig  string
		inc  []string
		key  crypto.Signer
		x5c  []*x509.Certificate
	}{
		{"nil state", nil, "a", []string{"**"}, key, nil},
		{"nil key", st, "a", []string{"**"}, nil, nil},
		{"empty name", st, "", []string{"**"}, key, nil},
		{"bad name", st, "../a", []string{"**"}, key, nil},
		{"no include", st, "a", nil, key, nil},
		{"x5c of another key", st, "a", []string{"**"}, key, []*x509.Certificate{other.cert}},
		{"ed25519", st, "a", []string{"**"}, edKey, nil},
	} {
		if _, err := Sign(tt.st, tt.sig, tt.inc, nil, tt.key, tt.x5c); !errors.Is(err, ErrSign) {
			t.Errorf("Sign(%s) error = %v, want ErrSign", tt.name, err)
		}
	}
}

func TestParsePrivateKey(t *testing.T) {
	rsaKey := testRSA(t)
	ecKey := testEC(t, elliptic.P384())
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	p8rsa, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p8ec, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p8ed, _ := x509.MarshalPKCS8PrivateKey(edKey)
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	for _, tt := range []struct {
		name string
		pem  []byte
		want crypto.PublicKey
	}{
		{"PKCS1", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public()},
		{"PKCS8 RSA", enc("PRIVATE KEY", p8rsa), rsaKey.Public()},
		{"SEC1 after a certificate", append(enc("CERTIFICATE", []byte{1}), enc("EC PRIVATE KEY", sec1)...), ecKey.Public()},
		{"PKCS8 EC", enc("PRIVATE KEY", p8ec), ecKey.Public()},
	} {
		k, err := ParsePrivateKey(tt.pem)
		if err != nil {
			t.Errorf("ParsePrivateKey(%s) error = %v", tt.name, err)
			continue
		}
		if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
			t.Errorf("ParsePrivateKey(%s) returned another key", tt.name)
		}
	}
	for _, tt := range []struct {
		name string
		pem  []byte
	}{
		{"empty", nil},
		{"ed25519", enc("PRIVATE KEY", p8ed)},
		{"garbage", enc("EC PRIVATE KEY", []byte("x"))},
	} {
		if _, err := ParsePrivateKey(tt.pem); err == nil {
			t.Errorf("ParsePrivateKey(%s) = nil error, want one", tt.name)
		}
	}
	if _, err := ParseCertificates([]byte("nothing")); !errors.Is(err, ErrNoKey) {
		t.Errorf("ParseCertificates(nothing) error = %v, want ErrNoKey", err)
	}
	c := issue(t, nil, "c", true, nil)
	certs, err := ParseCertificates(append(certPEM(c.cert), certPEM(c.cert)...))
	if err != nil || len(certs) != 2 {
		t.Errorf("ParseCertificates(2 certs) = %d, %v, want 2", len(certs), err)
	}
}

// matchAny reports whether any pattern matches name, through the exported Match.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}
