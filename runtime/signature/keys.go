package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ErrNoKey is wrapped when no usable key or certificate is found in PEM
// input.
var ErrNoKey = errors.New("no usable key")

// ParsePrivateKey reads the first private key of a PEM file, in any of
// the encodings pvr accepts: PKCS#1 ("RSA PRIVATE KEY"), PKCS#8
// ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). Only RSA and ECDSA keys
// are returned.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("private key: %w: no PEM private key block", ErrNoKey)
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("private key %s: %w", b.Type, err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			if _, err := algFor(k.Public()); err != nil {
				return nil, fmt.Errorf("private key: %w", err)
			}
			return k, nil
		default:
			return nil, fmt.Errorf("private key: %w: unsupported type %T (want RSA or ECDSA)", ErrNoKey, k)
		}
	}
}

// ParseCertificates reads every "CERTIFICATE" block of a PEM bundle in
// order (for an x5c chain: signer first, then intermediates).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certificates: %w: no PEM CERTIFICATE block", ErrNoKey)
	}
	return out, nil
}

// trustedKey is a public key from pub.pem.
type trustedKey struct {
	pub  crypto.PublicKey
	name string
}

// PEMPublicKey returns the public key of a pub.pem block: "PUBLIC KEY"
// (PKIX), "RSA PUBLIC KEY" (PKCS#1) or "CERTIFICATE" (the certificate's
// key); ok is false for other block types, which pub.pem may carry.
func PEMPublicKey(b *pem.Block) (pub any, ok bool, err error) {
	switch b.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		return nil, false, nil
	}
	return pub, true, err
}

// loadPublicKeys reads the trusted public keys of a PEM file: "PUBLIC
// KEY" (PKIX), "RSA PUBLIC KEY" (PKCS#1) and "CERTIFICATE" blocks (the
// certificate's key), as pvr's --pubkey accepts several keys in one file.
func loadPublicKeys(path string) ([]trustedKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []trustedKey
	for i := 1; ; i++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		pub, ok, err := PEMPublicKey(b)
		if !ok {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: PEM block %d (%s): %w", path, i, b.Type, err)
		}
		out = append(out, trustedKey{pub: pub, name: fmt.Sprintf("%s#%d (%s)", path, i, keyType(pub))})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w: no PEM public key", path, ErrNoKey)
	}
	return out, nil
}

// loadPool reads a trust store: every "CERTIFICATE" block of a PEM file.
func loadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
