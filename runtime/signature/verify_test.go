package signature

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mode
	}{{"", Lenient}, {"disabled", Disabled}, {"lenient", Lenient}, {"strict", Strict}, {"audit", Audit}} {
		got, err := ParseMode(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"Strict", "off", "1"} {
		if _, err := ParseMode(in); !errors.Is(err, ErrMode) {
			t.Errorf("ParseMode(%q) error = %v, want ErrMode", in, err)
		}
	}
	if _, err := New(Options{Mode: "paranoid"}); !errors.Is(err, ErrMode) {
		t.Errorf("New(Mode: paranoid) error = %v, want ErrMode", err)
	}
}

func TestSentinelTexts(t *testing.T) {
	if got, want := ErrInvalid.Error(), "Signature validation failed"; got != want {
		t.Errorf("ErrInvalid = %q, want %q", got, want)
	}
	if got, want := ErrNotCovered.Error(), "State not fully covered by signatures"; got != want {
		t.Errorf("ErrNotCovered = %q, want %q", got, want)
	}
}

// modeResult is what Verify returns in each mode: nil or a sentinel.
type modeResult map[Mode]error

func checkModes(t *testing.T, etc string, m map[string]json.RawMessage, want modeResult, o Options) {
	t.Helper()
	st := parse(t, m)
	for _, mode := range []Mode{Disabled, Lenient, Strict, Audit} {
		o.Mode, o.EtcDir = string(mode), etc
		o.Log = nil
		err := newVerifier(t, o).Verify(st)
		if w := want[mode]; (w == nil) != (err == nil) || (w != nil && !errors.Is(err, w)) {
			t.Errorf("mode %s: Verify = %v, want %v", mode, err, w)
		}
	}
}

func TestVerifyModesPubPEM(t *testing.T) {
	key := testRSA(t)
	etc := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, key.Public())})

	m := fixture()
	inc, exc := BSPGlobs()
	signInto(t, m, "bsp", inc, exc, key)
	inc, exc = PartGlobs("app")
	signInto(t, m, "app", inc, exc, key)

	t.Run("partial", func(t *testing.T) {
		checkModes(t, etc, m, modeResult{Strict: ErrNotCovered}, Options{})
	})
	t.Run("uncovered named", func(t *testing.T) {
		err := newVerifier(t, Options{Mode: "strict", EtcDir: etc}).Verify(parse(t, m))
		for _, k := range []string{"README.md", "acme/default.config", "2 keys"} {
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("Verify = %v, want it to name %q", err, k)
			}
		}
	})
	t.Run("audit logs", func(t *testing.T) {
		var buf bytes.Buffer
		v := newVerifier(t, Options{Mode: "audit", EtcDir: etc, Log: testLog(t, &buf)})
		if err := v.Verify(parse(t, m)); err != nil {
			t.Fatalf("Verify = %v, want nil", err)
		}
		if !strings.Contains(buf.String(), "README.md") || !strings.Contains(buf.String(), "level=WARN") {
			t.Errorf("audit log = %q, want a warning naming README.md", buf.String())
		}
	})

	full := clone(m)
	signInto(t, full, "rest", []string{"README.md", "acme/**"}, nil, key)
	t.Run("full", func(t *testing.T) {
		checkModes(t, etc, full, modeResult{}, Options{})
	})

	t.Run("tampered signed value", func(t *testing.T) {
		bad := clone(full)
		bad["app/root.squashfs"] = json.RawMessage(`"` + sha1 + `"`)
		checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
		err := newVerifier(t, Options{EtcDir: etc}).Verify(parse(t, bad))
		for _, s := range []string{"Signature validation failed", "_sigs/app.json", "pub.pem", "RSA-2048", "does not match"} {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("Verify = %v, want it to mention %q", err, s)
			}
		}
	})
	t.Run("tampered inline JSON", func(t *testing.T) {
		bad := clone(full)
		bad["bsp/build.json"] = json.RawMessage(`{"time": 1.5, "note": "changed"}`)
		checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
	t.Run("reformatted inline JSON", func(t *testing.T) {
		// Same value, other formatting: the canonical form is what is signed.
		ok := clone(full)
		ok["bsp/build.json"] = json.RawMessage("{\n \"note\": \"a<b & ü\",\n \"time\": 15e-1\n}")
		checkModes(t, etc, ok, modeResult{}, Options{})
	})
	t.Run("added key under signed part", func(t *testing.T) {
		bad := clone(full)
		bad["app/extra.bin"] = json.RawMessage(`"` + sha1 + `"`)
		checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
	t.Run("removed key", func(t *testing.T) {
		bad := clone(full)
		delete(bad, "bsp/kernel.img")
		checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
	t.Run("excluded value changes freely", func(t *testing.T) {
		ok := clone(full)
		ok["app/src.json"] = json.RawMessage(`{"other": true}`)
		ok["bsp/src.json"] = json.RawMessage(`{"other": true}`)
		checkModes(t, etc, ok, modeResult{}, Options{})
	})
	t.Run("tampered protected header", func(t *testing.T) {
		bad := clone(full)
		bad[SigKey("app")] = retouchHeader(t, bad[SigKey("app")], func(h map[string]any) {
			h["pvs"] = map[string]any{"include": []string{"app/root.squashfs"}, "exclude": []string{}}
		})
		checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
	t.Run("wrong typ", func(t *testing.T) {
		bad := clone(full)
		bad[SigKey("app")] = retouchHeader(t, bad[SigKey("app")], func(h map[string]any) { h["typ"] = "JWT" })
		err := newVerifier(t, Options{EtcDir: etc}).Verify(parse(t, bad))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "typ") {
			t.Errorf("Verify = %v, want ErrInvalid about typ", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, testEC(t, elliptic.P256()).Public())})
		checkModes(t, other, full, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
	t.Run("no pub.pem", func(t *testing.T) {
		empty := trustDir(t, nil)
		err := newVerifier(t, Options{EtcDir: empty}).Verify(parse(t, full))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "pub.pem") {
			t.Errorf("Verify = %v, want ErrInvalid naming pub.pem", err)
		}
	})
	t.Run("several trusted keys", func(t *testing.T) {
		many := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, testEC(t, elliptic.P384()).Public(), key.Public())})
		checkModes(t, many, full, modeResult{}, Options{})
	})
	t.Run("certificate in pub.pem", func(t *testing.T) {
		c := issue(t, nil, "signer", false, key)
		dir := trustDir(t, map[string][]byte{"pub.pem": certPEM(c.cert)})
		checkModes(t, dir, full, modeResult{}, Options{})
	})
	t.Run("no signatures", func(t *testing.T) {
		checkModes(t, etc, fixture(), modeResult{Strict: ErrNotCovered}, Options{})
	})
}

func TestVerifyAlgorithms(t *testing.T) {
	for _, tt := range []struct {
		alg string
		key crypto.Signer
	}{
		{"RS256", testRSA(t)},
		{"ES256", testEC(t, elliptic.P256())},
		{"ES384", testEC(t, elliptic.P384())},
		{"ES512", testEC(t, elliptic.P521())},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			etc := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, tt.key.Public())})
			m := fixture()
			signInto(t, m, "all", []string{"**"}, nil, tt.key)
			h := headerOf(t, m[SigKey("all")])
			if h["alg"] != tt.alg {
				t.Errorf("alg = %v, want %s", h["alg"], tt.alg)
			}
			checkModes(t, etc, m, modeResult{}, Options{})

			if tt.alg == "RS256" {
				return
			}
			// The same signature DER-encoded (upstream mbedtls' form) also verifies.
			der := clone(m)
			der[SigKey("all")] = retouchSig(t, der[SigKey("all")], rawToDER)
			checkModes(t, etc, der, modeResult{}, Options{})
			// A flipped bit does not, in either encoding.
			for _, enc := range []func([]byte) []byte{func(b []byte) []byte { return b }, rawToDER} {
				bad := clone(m)
				bad[SigKey("all")] = retouchSig(t, bad[SigKey("all")], func(b []byte) []byte {
					b = append([]byte(nil), b...)
					b[len(b)/4] ^= 1
					return enc(b)
				})
				checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
			}
		})
	}
}

func TestVerifyAlgorithmKeyMismatch(t *testing.T) {
	// An ES256 signature claimed as ES384: the key does not fit the alg.
	key := testEC(t, elliptic.P256())
	etc := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, key.Public())})
	m := fixture()
	signInto(t, m, "all", []string{"**"}, nil, key)
	m[SigKey("all")] = retouchHeader(t, m[SigKey("all")], func(h map[string]any) { h["alg"] = "ES384" })
	err := newVerifier(t, Options{EtcDir: etc}).Verify(parse(t, m))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("Verify = %v, want ErrInvalid about a P-384 key", err)
	}
}

func TestVerifyX5C(t *testing.T) {
	root := issue(t, nil, "Pantavisor root", true, nil)
	inter := issue(t, &root, "Pantavisor intermediate", true, nil)
	leaf := issue(t, &inter, "ci-signer", false, testRSA(t))
	stranger := issue(t, nil, "Stranger root", true, nil)
	strangerLeaf := issue(t, &stranger, "ci-signer", false, nil)
	etc := trustDir(t, map[string][]byte{
		"ca-certificates.crt":     certPEM(root.cert),
		"ca-oem-certificates.crt": certPEM(stranger.cert),
		"custom.crt":              certPEM(stranger.cert),
	})
	fail := modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}

	t.Run("chain with intermediate", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, leaf.key, leaf.cert, inter.cert)
		checkModes(t, etc, m, modeResult{}, Options{})
	})
	t.Run("missing intermediate", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, leaf.key, leaf.cert)
		checkModes(t, etc, m, fail, Options{})
	})
	t.Run("untrusted chain", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, strangerLeaf.key, strangerLeaf.cert)
		checkModes(t, etc, m, fail, Options{})
		err := newVerifier(t, Options{EtcDir: etc}).Verify(parse(t, m))
		for _, s := range []string{"_sigs/all.json", `CN="ci-signer"`, "ca-certificates", "untrusted chain"} {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("Verify = %v, want it to mention %q", err, s)
			}
		}
	})
	t.Run("custom store by name and by path", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, strangerLeaf.key, strangerLeaf.cert)
		checkModes(t, etc, m, modeResult{}, Options{TrustStore: "custom"})
		checkModes(t, trustDir(t, nil), m, modeResult{}, Options{TrustStore: etc + "/pantavisor/pvs/trust/custom.crt"})
	})
	t.Run("missing store", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, leaf.key, leaf.cert, inter.cert)
		checkModes(t, trustDir(t, nil), m, fail, Options{})
	})
	t.Run("leaf does not hold the key", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, leaf.key, leaf.cert, inter.cert)
		// Swap in another trusted certificate: chain fine, key wrong.
		other := issue(t, &inter, "ci-signer", false, nil)
		m[SigKey("all")] = retouchHeader(t, m[SigKey("all")], func(h map[string]any) {
			h["x5c"] = []string{b64std(other.cert.Raw), b64std(inter.cert.Raw)}
			h["alg"] = "ES256"
		})
		checkModes(t, etc, m, fail, Options{})
	})
	t.Run("expired", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, leaf.key, leaf.cert, inter.cert)
		later := func() time.Time { return time.Now().Add(48 * time.Hour) }
		checkModes(t, etc, m, fail, Options{Now: later})
	})
	t.Run("garbage x5c", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, leaf.key, leaf.cert, inter.cert)
		m[SigKey("all")] = retouchHeader(t, m[SigKey("all")], func(h map[string]any) { h["x5c"] = []string{"!!", "AAAA"} })
		checkModes(t, etc, m, fail, Options{})
	})
	t.Run("pub.pem not consulted with x5c", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, strangerLeaf.key, strangerLeaf.cert)
		dir := trustDir(t, map[string][]byte{"ca-certificates.crt": certPEM(root.cert), "pub.pem": pubPEM(t, strangerLeaf.key.Public())})
		checkModes(t, dir, m, fail, Options{})
	})
}

func TestVerifyOEMStore(t *testing.T) {
	root := issue(t, nil, "Pantavisor root", true, nil)
	oemRoot := issue(t, nil, "ACME root", true, nil)
	etc := trustDir(t, map[string][]byte{
		"ca-certificates.crt":     certPEM(root.cert),
		"ca-oem-certificates.crt": certPEM(oemRoot.cert),
	})
	oemSigner := issue(t, &oemRoot, "acme", false, nil)
	oemNamedByDefault := issue(t, &root, "acme", false, nil)
	otherByOEM := issue(t, &oemRoot, "somebody", false, nil)
	ok, fail := modeResult{Strict: ErrNotCovered}, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}
	appInc, appExc := PartGlobs("app")
	bspInc, bspExc := BSPGlobs()

	for _, tt := range []struct {
		name     string
		signer   pki
		oemName  string
		inc, exc []string
		want     modeResult
	}{
		{"OEM signer, app part: OEM store", oemSigner, "acme", appInc, appExc, ok},
		{"OEM signer, bsp: default store", oemSigner, "acme", bspInc, bspExc, fail},
		{"OEM signer, OEM config dir: default store", oemSigner, "acme", []string{"acme/**"}, nil, fail},
		{"OEM signer, bsp excluded but included: default store", oemSigner, "acme", []string{"**"}, []string{"bsp/**"}, fail},
		{"OEM signer without PV_OEM_NAME: default store", oemSigner, "", appInc, appExc, fail},
		{"OEM signer, other PV_OEM_NAME: default store", oemSigner, "other", appInc, appExc, fail},
		{"other CN from OEM root: default store", otherByOEM, "acme", appInc, appExc, fail},
		{"OEM CN from default root, app: OEM store", oemNamedByDefault, "acme", appInc, appExc, fail},
		{"OEM CN from default root, bsp: default store", oemNamedByDefault, "acme", bspInc, bspExc, ok},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := fixture()
			signInto(t, m, "s", tt.inc, tt.exc, tt.signer.key, tt.signer.cert)
			checkModes(t, etc, m, tt.want, Options{OEMName: tt.oemName})
		})
	}
}

func TestCoverage(t *testing.T) {
	key := testEC(t, elliptic.P256())
	etc := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, key.Public())})
	for _, tt := range []struct {
		name     string
		inc, exc []string
		want     modeResult
	}{
		{"everything", []string{"**"}, nil, modeResult{}},
		{"everything by braces", []string{"{bsp,app,_config,acme}/**", "{#spec,README.md,device.json}"}, nil, modeResult{}},
		// Excluded pairs count as covered only under an include glob.
		{"exclude all under include all", []string{"**"}, []string{"**"}, modeResult{}},
		{"exclude without include", []string{"app/**"}, []string{"**"}, modeResult{Strict: ErrNotCovered}},
		{"#spec missing", []string{"bsp/**", "app/**", "_config/**", "acme/**", "README.md", "device.json"}, nil, modeResult{Strict: ErrNotCovered}},
		{"nothing", []string{"nomatch"}, nil, modeResult{Strict: ErrNotCovered}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := fixture()
			signInto(t, m, "s", tt.inc, tt.exc, key)
			checkModes(t, etc, m, tt.want, Options{})
		})
	}

	t.Run("signature covering another signature", func(t *testing.T) {
		m := fixture()
		inc, exc := PartGlobs("app")
		signInto(t, m, "app", inc, exc, key)
		signInto(t, m, "all", []string{"**"}, nil, key) // includes _sigs/app.json, never itself
		checkModes(t, etc, m, modeResult{}, Options{})
		bad := clone(m)
		// A different but still valid app signature breaks "all".
		inc2, _ := PartGlobs("app")
		signInto(t, bad, "app", inc2, nil, key)
		checkModes(t, etc, bad, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
	t.Run("one bad signature fails even with full coverage elsewhere", func(t *testing.T) {
		m := fixture()
		signInto(t, m, "all", []string{"**"}, nil, key)
		signInto(t, m, "bad", []string{"bsp/**"}, nil, testEC(t, elliptic.P256()))
		checkModes(t, etc, m, modeResult{Lenient: ErrInvalid, Strict: ErrInvalid, Audit: ErrInvalid}, Options{})
	})
}

func TestVerifyNilState(t *testing.T) {
	if err := newVerifier(t, Options{}).Verify(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(nil) = %v, want ErrInvalid", err)
	}
	if err := newVerifier(t, Options{Mode: "disabled"}).Verify(nil); err != nil {
		t.Errorf("disabled Verify(nil) = %v, want nil", err)
	}
}

func clone(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sigDoc is a decoded signature document.
type sigDoc struct {
	Spec      string `json:"#spec"`
	Protected string `json:"protected"`
	Signature string `json:"signature"`
}

func decodeDoc(t testing.TB, raw json.RawMessage) sigDoc {
	t.Helper()
	var d sigDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func encodeDoc(t testing.TB, d sigDoc) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// headerOf decodes the protected header of a signature document.
func headerOf(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(decodeDoc(t, raw).Protected)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// retouchHeader edits the protected header, keeping the signature.
func retouchHeader(t testing.TB, raw json.RawMessage, edit func(map[string]any)) json.RawMessage {
	t.Helper()
	d := decodeDoc(t, raw)
	h := headerOf(t, raw)
	edit(h)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	d.Protected = base64.RawURLEncoding.EncodeToString(b)
	return encodeDoc(t, d)
}

// retouchSig rewrites the signature bytes.
func retouchSig(t testing.TB, raw json.RawMessage, edit func([]byte) []byte) json.RawMessage {
	t.Helper()
	d := decodeDoc(t, raw)
	b, err := base64.RawURLEncoding.DecodeString(d.Signature)
	if err != nil {
		t.Fatal(err)
	}
	d.Signature = base64.RawURLEncoding.EncodeToString(edit(b))
	return encodeDoc(t, d)
}

// rawToDER converts a JOSE r||s signature to ASN.1 DER.
func rawToDER(b []byte) []byte {
	n := len(b) / 2
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(b[:n]), new(big.Int).SetBytes(b[n:])})
	if err != nil {
		return nil
	}
	return der
}

func TestVerifyIgnoresOtherSigsEntries(t *testing.T) {
	key := testEC(t, elliptic.P256())
	etc := trustDir(t, map[string][]byte{"pub.pem": pubPEM(t, key.Public())})
	m := fixture()
	m["_sigs/old.json"] = json.RawMessage(`{"#spec": "pvs@1", "sig": "x"}`)
	signInto(t, m, "all", []string{"**"}, []string{"_sigs/**"}, key)
	var buf bytes.Buffer
	err := newVerifier(t, Options{Mode: "strict", EtcDir: etc, Log: testLog(t, &buf)}).Verify(parse(t, m))
	if err != nil {
		t.Errorf("Verify = %v, want nil", err)
	}
	if !strings.Contains(buf.String(), "_sigs/old.json") {
		t.Errorf("log = %q, want a warning naming _sigs/old.json", buf.String())
	}
}
