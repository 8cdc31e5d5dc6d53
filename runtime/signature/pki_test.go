package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Shas of the fixture state.
const (
	sha1 = "1111111111111111111111111111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222222222222222222222222222"
	sha3 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// fixture returns a small state: a BSP, an app with a _config overlay,
// an OEM config dir "acme" and a loose README.
func fixture() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"#spec":                  json.RawMessage(`"pantavisor-service-system@1"`),
		"bsp/kernel.img":         json.RawMessage(`"` + sha1 + `"`),
		"bsp/src.json":           json.RawMessage(`{"pvr": "x", "#spec": "bsp-manifest-src@1"}`),
		"bsp/build.json":         json.RawMessage(`{"time": 1.50, "note": "a<b & \u00fc"}`),
		"device.json":            json.RawMessage(`{}`),
		"app/root.squashfs":      json.RawMessage(`"` + sha2 + `"`),
		"app/src.json":           json.RawMessage(`{"x": [1, 2]}`),
		"_config/app/etc/x.conf": json.RawMessage(`"` + sha3 + `"`),
		"acme/default.config":    json.RawMessage(`"` + sha3 + `"`),
		"README.md":              json.RawMessage(`"` + sha3 + `"`),
	}
}

// parse builds a state from members.
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

// signInto signs m's state and stores the signature as _sigs/<name>.json.
func signInto(t testing.TB, m map[string]json.RawMessage, name string, include, exclude []string, key crypto.Signer, x5c ...*x509.Certificate) {
	t.Helper()
	doc, err := Sign(parse(t, m), name, include, exclude, key, x5c)
	if err != nil {
		t.Fatalf("Sign(%s): %v", name, err)
	}
	m[SigKey(name)] = doc
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaErr  error
)

// testRSA returns one RSA-2048 key shared by the tests (generation is slow).
func testRSA(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() { rsaKey, rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	return rsaKey
}

func testEC(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pki is a certificate with its key.
type pki struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64

// issue makes a certificate for key (a fresh P-256 key if nil) named cn,
// signed by parent (self-signed if parent is nil), valid around now.
func issue(t testing.TB, parent *pki, cn string, ca bool, key crypto.Signer) pki {
	t.Helper()
	if key == nil {
		key = testEC(t, elliptic.P256())
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pki{cert: c, key: key}
}

func certPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func pubPEM(t testing.TB, keys ...crypto.PublicKey) []byte {
	t.Helper()
	var b []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return b
}

// trustDir writes files into <etc>/pantavisor/pvs/trust and returns etc.
func trustDir(t testing.TB, files map[string][]byte) string {
	t.Helper()
	etc := t.TempDir()
	dir := filepath.Join(etc, "pantavisor", "pvs", "trust")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return etc
}

// testLog returns a logger writing to t.Log and, if w is not nil, to w.
func testLog(t testing.TB, w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(tlog{t}, orDiscard(w)), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newVerifier returns a verifier or fails the test.
func newVerifier(t testing.TB, o Options) *Verifier {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog(t, nil)
	}
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
