package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// devDir is the committed developer CA.
const devDir = "../../ca/developer"

func readDev(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(devDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// factoryState is a trails/0-shaped state: a BSP, device.json and two
// containers, one with a _config overlay.
func factoryState(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	sha := func(c string) json.RawMessage { return json.RawMessage(`"` + strings.Repeat(c, 64) + `"`) }
	return map[string]json.RawMessage{
		"#spec":                         json.RawMessage(`"pantavisor-service-system@1"`),
		"bsp/kernel.img":                sha("1"),
		"bsp/pantavisor":                sha("2"),
		"bsp/run.json":                  json.RawMessage(`{"addons":[],"initrd":"pantavisor","linux":"kernel.img"}`),
		"bsp/src.json":                  json.RawMessage(`{"#spec":"bsp-manifest-src@1","pvr":"x"}`),
		"device.json":                   json.RawMessage(`{}`),
		"pv-mgmt/root.squashfs":         sha("3"),
		"pv-mgmt/lxc.container.conf":    sha("4"),
		"pv-mgmt/run.json":              json.RawMessage(`{"#spec":"service-manifest-run@1","name":"pv-mgmt","type":"lxc","root-volume":"root.squashfs","config":"lxc.container.conf","volumes":[],"roles":["mgmt"]}`),
		"pv-network/root.squashfs":      sha("5"),
		"pv-network/lxc.container.conf": sha("6"),
		"pv-network/run.json":           json.RawMessage(`{"#spec":"service-manifest-run@1","name":"pv-network","type":"lxc","root-volume":"root.squashfs","config":"lxc.container.conf","volumes":[]}`),
		"_config/pv-network/etc/x.conf": sha("7"),
	}
}

func parse(t testing.TB, m map[string]json.RawMessage) *state.State {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(b)
	if err != nil {
		t.Fatalf("state.Parse: %v", err)
	}
	return st
}

// verifier returns a verifier in mode whose trust store is trustPEM.
func verifier(t testing.TB, mode string, trustPEM []byte) *signature.Verifier {
	t.Helper()
	etc := t.TempDir()
	dir := filepath.Join(etc, "pantavisor", "pvs", "trust")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, signature.DefaultTrustStore+".crt"), trustPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := signature.New(signature.Options{Mode: mode, EtcDir: etc})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDeveloperCA checks the committed ca/developer files: a CA trust
// store, a signing key whose x5c chains to it, valid 1970 to 9999.
func TestDeveloperCA(t *testing.T) {
	caPEM := readDev(t, FileCACert)
	if err := CheckCertPEM(caPEM); err != nil {
		t.Fatalf("CheckCertPEM(ca.crt) = %v, want nil", err)
	}
	ca, err := LoadCA(caPEM, readDev(t, FileCAKey))
	if err != nil {
		t.Fatalf("LoadCA = %v", err)
	}
	if !ca.Cert.IsCA {
		t.Errorf("ca.crt IsCA = false, want true")
	}
	s, err := Load(readDev(t, FileSignerKey), readDev(t, FileSignerCert))
	if err != nil {
		t.Fatalf("Load(signer.key, signer.crt) = %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, at := range []time.Time{time.Unix(1, 0), time.Now(), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := s.chain[0].Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
			t.Errorf("signer.crt verify at %s = %v, want nil", at, err)
		}
	}
	if got, want := s.Subject(), `CN="pv-developer-001"`; got != want {
		t.Errorf("Subject() = %s, want %s", got, want)
	}
}

// TestSignVerify signs a factory state with the developer key and checks
// the runtime's verifier: accepted in every mode with the developer CA
// as trust store, rejected with another CA (what PV_PVS_CERT_PEM ships).
func TestSignVerify(t *testing.T) {
	s, err := Load(readDev(t, FileSignerKey), readDev(t, FileSignerCert))
	if err != nil {
		t.Fatal(err)
	}
	m := factoryState(t)
	sigs, err := s.Sign(parse(t, m), []string{BSP, "pv-mgmt", "pv-network"})
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	for _, k := range []string{"_sigs/bsp.json", "_sigs/pv-mgmt.json", "_sigs/pv-network.json"} {
		if sigs[k] == nil {
			t.Errorf("Sign: no %s", k)
		}
		m[k] = sigs[k]
	}
	signed := parse(t, m)
	if sum := signature.Inspect(signed); len(sum.NotSeen) != 0 {
		t.Errorf("Inspect(signed).NotSeen = %v, want none", sum.NotSeen)
	}
	other, err := NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	dev := readDev(t, FileCACert)
	for _, tc := range []struct {
		mode  string
		trust []byte
		want  error
	}{
		{"lenient", dev, nil},
		{"strict", dev, nil},
		{"audit", dev, nil},
		{"strict", CertPEM(other.Cert), signature.ErrInvalid},
		{"lenient", CertPEM(other.Cert), signature.ErrInvalid},
		{"strict", append(CertPEM(other.Cert), dev...), nil},
	} {
		err := verifier(t, tc.mode, tc.trust).Verify(signed)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Verify(%s, trust %d bytes) = %v, want %v", tc.mode, len(tc.trust), err, tc.want)
		}
	}
	// Unsigned containers are what strict mode catches.
	delete(m, "_sigs/pv-network.json")
	err = verifier(t, "strict", dev).Verify(parse(t, m))
	if !errors.Is(err, signature.ErrNotCovered) {
		t.Errorf("Verify(strict, pv-network unsigned) = %v, want %v", err, signature.ErrNotCovered)
	}
}

// TestSignRawKey signs without x5c: the device verifies with pub.pem.
func TestSignRawKey(t *testing.T) {
	s, err := Load(readDev(t, FileSignerKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := factoryState(t)
	sigs, err := s.Sign(parse(t, m), []string{BSP})
	if err != nil {
		t.Fatal(err)
	}
	m["_sigs/bsp.json"] = sigs["_sigs/bsp.json"]
	etc := t.TempDir()
	dir := filepath.Join(etc, "pantavisor", "pvs", "trust")
	os.MkdirAll(dir, 0o755)
	pub, err := PublicKeyPEM(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPubPEM(pub); err != nil {
		t.Fatalf("CheckPubPEM(pub) = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "pub.pem"), pub, 0o644)
	v, _ := signature.New(signature.Options{Mode: "lenient", EtcDir: etc})
	if err := v.Verify(parse(t, m)); err != nil {
		t.Errorf("Verify(pub.pem) = %v, want nil", err)
	}
}

func TestLoadErrors(t *testing.T) {
	other, err := NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		key, x5c  []byte
		wantInErr string
	}{
		{"no key", nil, nil, "no PEM private key"},
		{"cert as key", readDev(t, FileSignerCert), nil, "no PEM private key"},
		{"x5c of another key", readDev(t, FileSignerKey), CertPEM(other.Cert), "does not hold the signing key"},
		{"x5c without certificate", readDev(t, FileSignerKey), readDev(t, FileSignerKey), "no PEM CERTIFICATE block"},
	} {
		_, err := Load(tc.key, tc.x5c)
		if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("%s: Load = %v, want an error with %q", tc.name, err, tc.wantInErr)
		}
	}
}

func TestCheckPEM(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224pub, err := PublicKeyPEM(&p224.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := readDev(t, FileCACert)
	key := readDev(t, FileSignerKey)
	s, err := Load(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyPEM(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	garbage := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")})
	for _, tc := range []struct {
		name            string
		data            []byte
		certErr, pubErr string // "" = valid
	}{
		{"developer CA", ca, "", ""},
		{"openssl text around", append([]byte("subject=CN = x\n"), ca...), "", ""},
		{"bundle", append(append([]byte{}, ca...), readDev(t, FileSignerCert)...), "", ""},
		{"empty", nil, "no PEM block", "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block", "no PEM block"},
		{"public key", pub, "no CERTIFICATE block", ""},
		{"private key", key, "must not hold private keys", "must not hold private keys"},
		{"CA and private key", append(append([]byte{}, ca...), key...), "must not hold private keys", "must not hold private keys"},
		{"bad DER", garbage, "PEM block 1", "PEM block 1"},
		{"P-224", p224pub, "no CERTIFICATE block", "unsupported curve P-224"},
	} {
		for _, c := range []struct {
			fn   func([]byte) error
			want string
			what string
		}{{CheckCertPEM, tc.certErr, "CheckCertPEM"}, {CheckPubPEM, tc.pubErr, "CheckPubPEM"}} {
			err := c.fn(tc.data)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s(%s) = %v, want nil", c.what, tc.name, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrPEM)):
				t.Errorf("%s(%s) = %v, want ErrPEM with %q", c.what, tc.name, err, c.want)
			}
		}
	}
}

// TestGenerate makes a CA directory like ca/gen does, then issues a new
// signing certificate from it.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	files, err := Generate(dir, "test CA", "test-signer", false)
	if err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	if got, want := len(files), 4; got != want {
		t.Fatalf("Generate: %d files, want %d", got, want)
	}
	again, err := Generate(dir, "", "second-signer", true)
	if err != nil {
		t.Fatalf("Generate(issue) = %v", err)
	}
	if _, ok := again[FileCACert]; ok {
		t.Errorf("Generate(issue) returned a new %s", FileCACert)
	}
	for _, f := range []map[string][]byte{files, again} {
		s, err := Load(f[FileSignerKey], f[FileSignerCert])
		if err != nil {
			t.Fatal(err)
		}
		m := factoryState(t)
		sigs, err := s.Sign(parse(t, m), []string{BSP})
		if err != nil {
			t.Fatal(err)
		}
		m["_sigs/bsp.json"] = sigs["_sigs/bsp.json"]
		if err := verifier(t, "lenient", files[FileCACert]).Verify(parse(t, m)); err != nil {
			t.Errorf("Verify(%s) = %v, want nil", s.Subject(), err)
		}
	}
}

func FuzzCheckCertPEM(f *testing.F) {
	f.Add(readDev(f, FileCACert))
	f.Add(readDev(f, FileSignerKey))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := CheckCertPEM(data); err == nil {
			if _, err := parseCerts(data); err != nil {
				t.Errorf("CheckCertPEM accepted what ParseCertificates rejects: %v", err)
			}
		}
	})
}

func FuzzCheckPubPEM(f *testing.F) {
	f.Add(readDev(f, FileCACert))
	f.Add(readDev(f, FileSignerKey))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckPubPEM(data)
	})
}

// TestSignDeterministic: the same state and key give the same signature
// bytes (RFC 6979), which keeps image builds reproducible.
func TestSignDeterministic(t *testing.T) {
	s, err := Load(readDev(t, FileSignerKey), readDev(t, FileSignerCert))
	if err != nil {
		t.Fatal(err)
	}
	st := parse(t, factoryState(t))
	a, err := s.Sign(st, []string{BSP, "pv-mgmt"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Sign(st, []string{BSP, "pv-mgmt"})
	if err != nil {
		t.Fatal(err)
	}
	for k := range a {
		if string(a[k]) != string(b[k]) {
			t.Errorf("Sign twice: %s differs:\n%s\n%s", k, a[k], b[k])
		}
	}
}

// TestSignKeys signs loose keys (a stepskel) exactly: strict mode then
// covers them, and a key with glob characters matches only itself.
func TestSignKeys(t *testing.T) {
	s, err := Load(readDev(t, FileSignerKey), readDev(t, FileSignerCert))
	if err != nil {
		t.Fatal(err)
	}
	m := factoryState(t)
	sigs, err := s.Sign(parse(t, m), []string{BSP, "pv-mgmt", "pv-network"})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sigs {
		m[k] = v
	}
	sha := json.RawMessage(`"` + strings.Repeat("8", 64) + `"`)
	m["device-envelope.json"] = json.RawMessage(`{"a":1}`)
	m["notes/a[1]*.txt"] = sha
	m["notes/a1x.txt"] = sha
	dev := readDev(t, FileCACert)
	if err := verifier(t, "strict", dev).Verify(parse(t, m)); !errors.Is(err, signature.ErrNotCovered) {
		t.Fatalf("Verify(strict, loose keys unsigned) = %v, want %v", err, signature.ErrNotCovered)
	}
	key, doc, err := s.SignKeys(parse(t, m), SkelPart, []string{"device-envelope.json", "notes/a[1]*.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if key != "_sigs/_pvskel.json" {
		t.Errorf("SignKeys key = %s, want _sigs/_pvskel.json", key)
	}
	m[key] = doc
	sum := signature.Inspect(parse(t, m))
	if got := strings.Join(sum.NotSeen, " "); got != "notes/a1x.txt" {
		t.Errorf("Inspect.NotSeen = %q, want notes/a1x.txt (the glob characters are literal)", got)
	}
	delete(m, "notes/a1x.txt")
	if err := verifier(t, "strict", dev).Verify(parse(t, m)); err != nil {
		t.Errorf("Verify(strict, loose keys signed) = %v, want nil", err)
	}
}
