// Package sign signs the factory revision an image build writes, in
// pvs@2 (runtime/signature), as meta-pantavisor's `pvr sig add` does:
// _sigs/bsp.json over bsp/**, device.json and #spec (bsp/src.json
// excluded) and _sigs/<container>.json over <container>/** and
// _config/<container>/** for each container the build made, and
// _sigs/_pvskel.json over loose vendor files (SignKeys). It also
// makes and checks the PEM material: the developer CA of ca/ (NewCA,
// Issue) and the trust files an image ships (CheckCertPEM, CheckPubPEM).
//
//	s, err := sign.Load(keyPEM, x5cPEM)
//	sigs, err := s.Sign(st, []string{"bsp", "pv-mgmt"})
//	// sigs["_sigs/bsp.json"] = {"#spec":"pvs@2",...}
package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// BSP is the name of the BSP's signature part.
const BSP = "bsp"

// Signer holds a signing key and its x5c certificate chain.
type Signer struct {
	key   crypto.Signer
	chain []*x509.Certificate
}

// Load reads a signer from a PEM private key (PKCS#1, PKCS#8 or SEC 1;
// PVR_SIG_KEY) and a PEM certificate chain, signer certificate first
// (PVR_X5C_PATH). The first certificate must hold the key's public key.
// An empty x5cPEM signs without a chain: the device then needs the key
// in its pub.pem.
func Load(keyPEM, x5cPEM []byte) (*Signer, error) {
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if ec, ok := key.(*ecdsa.PrivateKey); ok {
		key = deterministic{ec}
	}
	s := &Signer{key: key}
	if len(x5cPEM) == 0 {
		return s, nil
	}
	if s.chain, err = parseCerts(x5cPEM); err != nil {
		return nil, fmt.Errorf("x5c: %w", err)
	}
	leaf := s.chain[0]
	eq, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(key.Public()) {
		return nil, fmt.Errorf("x5c: the first certificate (CN=%q) does not hold the signing key", leaf.Subject.CommonName)
	}
	return s, nil
}

// deterministic signs with RFC 6979 deterministic ECDSA (a nil random
// source), so the same state and key give the same signature and image
// builds stay reproducible. RSA PKCS#1 v1.5 signatures are deterministic
// already.
type deterministic struct{ *ecdsa.PrivateKey }

// Sign implements crypto.Signer, ignoring rand.
func (d deterministic) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.PrivateKey.Sign(nil, digest, opts)
}

// Subject describes the signer for progress output: the x5c leaf's CN,
// or "raw key".
func (s *Signer) Subject() string {
	if len(s.chain) == 0 {
		return "raw key (no x5c)"
	}
	return fmt.Sprintf("CN=%q", s.chain[0].Subject.CommonName)
}

// Globs returns the include and exclude globs part is signed with: the
// BSP's meta-pantavisor globs for "bsp", else `pvr sig add --part`'s.
func Globs(part string) (include, exclude []string) {
	if part == BSP {
		return signature.BSPGlobs()
	}
	return signature.PartGlobs(part)
}

// SkelPart is the name of the signature of the vendor stepskel's keys,
// as meta-pantavisor's `pvr sig add --raw _pvskel`.
const SkelPart = "_pvskel"

// SignKeys signs exactly keys of st (and "#spec") as the signature
// called name, returning its state key and document. It signs files
// that belong to no part, like the stepskel's (SkelPart).
func (s *Signer) SignKeys(st *state.State, name string, keys []string) (string, json.RawMessage, error) {
	inc := []string{"#spec"}
	for _, k := range keys {
		inc = append(inc, literal(k))
	}
	doc, err := signature.Sign(st, name, inc, nil, s.key, s.chain)
	if err != nil {
		return "", nil, fmt.Errorf("sign %s: %w", name, err)
	}
	return signature.SigKey(name), doc, nil
}

// literal escapes the glob characters of a state key, so the pattern
// matches the key only.
func literal(key string) string {
	var b strings.Builder
	for _, r := range key {
		if strings.ContainsRune(`\*?[]{},`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Sign signs each part of st and returns the signatures by state key
// (_sigs/<part>.json). The signatures do not sign each other, so adding
// them to st changes none of them. Signing is deterministic: the same
// state and key give the same bytes.
func (s *Signer) Sign(st *state.State, parts []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(parts))
	for _, p := range parts {
		inc, exc := Globs(p)
		doc, err := signature.Sign(st, p, inc, exc, s.key, s.chain)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", p, err)
		}
		out[signature.SigKey(p)] = doc
	}
	return out, nil
}
