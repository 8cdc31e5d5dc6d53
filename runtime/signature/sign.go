package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrSign is wrapped by Sign's argument errors.
var ErrSign = errors.New("cannot sign")

// header is the protected header Sign writes, fields in the order
// go-jose (pvr) serializes them.
type header struct {
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk,omitempty"`
	PVS pvsGlobs        `json:"pvs"`
	Typ string          `json:"typ"`
	X5C []string        `json:"x5c,omitempty"`
}

type pvsGlobs struct {
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
}

// Sign signs the pairs of st selected by include and exclude (see Match
// and Payload) as the signature called name, and returns the value to
// store at SigKey(name): {"#spec":"pvs@2","protected":…,"signature":…},
// the shape `pvr sig add` writes. The header carries the key as "jwk"
// like pvr's, and the chain as "x5c" when x5c is not empty (signer
// certificate first; its key must be key's). The algorithm follows the
// key: RS256 for RSA, ES256/384/512 for P-256/384/521, ES signatures in
// JOSE r||s form.
func Sign(st *state.State, name string, include, exclude []string, key crypto.Signer, x5c []*x509.Certificate) (json.RawMessage, error) {
	if st == nil {
		return nil, fmt.Errorf("%w: no state", ErrSign)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no key", ErrSign)
	}
	self := SigKey(name)
	if name == "" {
		return nil, fmt.Errorf("%w: empty signature name", ErrSign)
	}
	if err := state.ValidKey(self); err != nil {
		return nil, fmt.Errorf("%w: signature name %q: %w", ErrSign, name, err)
	}
	if len(include) == 0 {
		return nil, fmt.Errorf("%w: no include globs", ErrSign)
	}
	pub := key.Public()
	alg, err := algFor(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	jwk, err := publicJWK(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	h := header{
		Alg: alg.name,
		JWK: jwk,
		PVS: pvsGlobs{Include: nonNil(include), Exclude: nonNil(exclude)},
		Typ: "PVS",
	}
	for i, c := range x5c {
		if i == 0 {
			if eq, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
				return nil, fmt.Errorf("%w: x5c[0] (CN=%q) does not hold the signing key", ErrSign, c.Subject.CommonName)
			}
		}
		h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(c.Raw))
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrSign, err)
	}
	protected := base64.RawURLEncoding.EncodeToString(bytes.TrimSpace(hb.Bytes()))

	payload, err := Payload(st, self, include, exclude)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	sig, err := alg.sign(key, []byte(protected+"."+base64.RawURLEncoding.EncodeToString(payload)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	doc, err := json.Marshal(map[string]string{
		"#spec":     "pvs@2",
		"protected": protected,
		"signature": base64.RawURLEncoding.EncodeToString(sig),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	return doc, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// publicJWK returns the RFC 7517 JWK of an RSA or EC public key, members
// in go-jose's order.
func publicJWK(pub crypto.PublicKey) (json.RawMessage, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return json.Marshal(struct {
			Kty string `json:"kty"`
			N   string `json:"n"`
			E   string `json:"e"`
		}{"RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())})
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		pt := e.Bytes() // 0x04 || X || Y
		size := (len(pt) - 1) / 2
		return json.Marshal(struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{"EC", k.Curve.Params().Name, b64(pt[1 : 1+size]), b64(pt[1+size:])})
	}
	return nil, fmt.Errorf("jwk: unsupported key type %T", pub)
}
