package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // RS256, ES256
	_ "crypto/sha512" // ES384, ES512
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// errBadSignature is the detail for a signature that does not match.
var errBadSignature = errors.New("signature does not match payload")

// algorithm is a supported JWS "alg".
type algorithm struct {
	name  string
	hash  crypto.Hash
	curve elliptic.Curve // nil for RSA
}

var algorithms = map[string]algorithm{
	"RS256": {"RS256", crypto.SHA256, nil},
	"ES256": {"ES256", crypto.SHA256, elliptic.P256()},
	"ES384": {"ES384", crypto.SHA384, elliptic.P384()},
	"ES512": {"ES512", crypto.SHA512, elliptic.P521()},
}

func lookupAlg(name string) (algorithm, error) {
	a, ok := algorithms[name]
	if !ok {
		return a, fmt.Errorf("unsupported alg %q (want RS256, ES256, ES384 or ES512)", name)
	}
	return a, nil
}

// algFor returns the algorithm pvr picks for a key: RS256 for RSA,
// ES256/384/512 for EC P-256/384/521.
func algFor(pub crypto.PublicKey) (algorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return algorithms["RS256"], nil
	case *ecdsa.PublicKey:
		for _, a := range algorithms {
			if a.curve != nil && a.curve == k.Curve {
				return a, nil
			}
		}
		return algorithm{}, fmt.Errorf("unsupported EC curve %s", k.Curve.Params().Name)
	default:
		return algorithm{}, fmt.Errorf("unsupported key type %T (want RSA or EC P-256/384/521)", pub)
	}
}

func (a algorithm) digest(input []byte) []byte {
	h := a.hash.New()
	h.Write(input)
	return h.Sum(nil)
}

// verify checks sig over input with pub. RS256 is RSASSA-PKCS1-v1_5. For
// ES* the primary encoding is JOSE's fixed-width r||s (RFC 7518 §3.4, what
// pvr/go-jose and Sign produce); an ASN.1 DER ECDSA-Sig-Value (what
// upstream's mbedtls pk_verify expects ⚠) is accepted as well.
func (a algorithm) verify(pub crypto.PublicKey, input, sig []byte) error {
	d := a.digest(input)
	if a.curve == nil {
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an RSA key, have %s", a.name, keyType(pub))
		}
		if err := rsa.VerifyPKCS1v15(k, a.hash, d, sig); err != nil {
			return errBadSignature
		}
		return nil
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != a.curve {
		return fmt.Errorf("alg %s needs an EC %s key, have %s", a.name, a.curve.Params().Name, keyType(pub))
	}
	size := (a.curve.Params().BitSize + 7) / 8
	if len(sig) == 2*size {
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if ecdsa.Verify(k, d, r, s) {
			return nil
		}
	}
	if ecdsa.VerifyASN1(k, d, sig) {
		return nil
	}
	return errBadSignature
}

// sign signs input with key; ES* signatures are JOSE r||s.
func (a algorithm) sign(key crypto.Signer, input []byte) ([]byte, error) {
	d := a.digest(input)
	sig, err := key.Sign(rand.Reader, d, a.hash)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if a.curve == nil {
		return sig, nil
	}
	var v struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &v); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("sign: signer returned a malformed ECDSA signature")
	}
	size := (a.curve.Params().BitSize + 7) / 8
	if v.R.Sign() < 0 || v.S.Sign() < 0 || v.R.BitLen() > 8*size || v.S.BitLen() > 8*size {
		return nil, fmt.Errorf("sign: signer returned an out-of-range ECDSA signature")
	}
	out := make([]byte, 2*size)
	v.R.FillBytes(out[:size])
	v.S.FillBytes(out[size:])
	return out, nil
}

// keyType names a public key for messages.
func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	default:
		return fmt.Sprintf("%T", pub)
	}
}
