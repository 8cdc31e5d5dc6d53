package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Validity of the certificates NewCA and Issue make: from the Unix epoch,
// so a device without a real-time clock (booting in 1970) accepts them,
// to the RFC 5280 "no well-defined expiration" date.
var (
	NotBefore = time.Unix(0, 0).UTC()
	NotAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// CA is a certificate authority: a self-signed ECDSA P-256 certificate
// and its key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a root CA called cn (ECDSA P-256, valid NotBefore to
// NotAfter) that may only sign leaf certificates.
func NewCA(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca %q: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert, err := create(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca %q: %w", cn, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA from its certificate and private key in PEM.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	k, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(certs[0].PublicKey) {
		return nil, fmt.Errorf("ca %q: the key is not the certificate's", certs[0].Subject.CommonName)
	}
	return &CA{Cert: certs[0], Key: key}, nil
}

// Issue makes a code-signing leaf certificate called cn for a new ECDSA
// P-256 key, signed by ca.
func (ca *CA) Issue(cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("leaf %q: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	cert, err := create(tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("leaf %q: %w", cn, err)
	}
	return cert, key, nil
}

// create signs tmpl with signer's key, filling in the serial number (from
// the public key, so two certificates of one key share it only when they
// are the same certificate) and the validity.
func create(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pk)
	tmpl.SerialNumber = new(big.Int).SetBytes(sum[:16])
	tmpl.NotBefore, tmpl.NotAfter = NotBefore, NotAfter
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// CertPEM encodes certificates as "CERTIFICATE" PEM blocks, in order.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes an ECDSA private key as a PKCS#8 "PRIVATE KEY" block.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" block (the
// pub.pem format).
func PublicKeyPEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// File names of a CA directory (ca/developer and what ca/gen writes).
const (
	// FileCACert is the CA certificate: the device trust store.
	FileCACert = "ca.crt"
	// FileCAKey is the CA's private key, to issue signing certificates.
	FileCAKey = "ca.key"
	// FileSignerKey is the signing key (PVR_SIG_KEY).
	FileSignerKey = "signer.key"
	// FileSignerCert is the signing certificate chain, x5c (PVR_X5C_PATH).
	FileSignerCert = "signer.crt"
)

// Generate returns the PEM files of a new CA called caCN with a signing
// certificate called cn, by file name. With issue, the CA is read from
// dir's ca.crt and ca.key and only the signer files are returned.
func Generate(dir, caCN, cn string, issue bool) (map[string][]byte, error) {
	out := map[string][]byte{}
	var ca *CA
	if issue {
		certPEM, err := os.ReadFile(filepath.Join(dir, FileCACert))
		if err != nil {
			return nil, err
		}
		keyPEM, err := os.ReadFile(filepath.Join(dir, FileCAKey))
		if err != nil {
			return nil, err
		}
		if ca, err = LoadCA(certPEM, keyPEM); err != nil {
			return nil, err
		}
	} else {
		var err error
		if ca, err = NewCA(caCN); err != nil {
			return nil, err
		}
		out[FileCACert] = CertPEM(ca.Cert)
		if out[FileCAKey], err = KeyPEM(ca.Key); err != nil {
			return nil, err
		}
	}
	leaf, key, err := ca.Issue(cn)
	if err != nil {
		return nil, err
	}
	out[FileSignerCert] = CertPEM(leaf)
	if out[FileSignerKey], err = KeyPEM(key); err != nil {
		return nil, err
	}
	return out, nil
}
