package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/signature"
)

// ErrPEM is wrapped by the PEM checks' errors.
var ErrPEM = errors.New("bad PEM")

// blocks decodes every PEM block of data. Text between blocks is
// allowed (openssl writes "subject=" lines), a file without any block
// is not.
func blocks(data []byte) ([]*pem.Block, error) {
	var out []*pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no PEM block", ErrPEM)
	}
	return out, nil
}

// refusePrivate fails on a private key block: trust material goes into
// the image, a private key there would be published with it.
func refusePrivate(bs []*pem.Block) error {
	for i, b := range bs {
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return fmt.Errorf("%w: PEM block %d is a %s: trust files must not hold private keys", ErrPEM, i+1, b.Type)
		}
	}
	return nil
}

// CheckCertPEM checks a trust store (PV_PVS_CERT_PEM): one or more
// "CERTIFICATE" blocks that all parse, with a key the verifier supports,
// and no private key.
func CheckCertPEM(data []byte) error {
	bs, err := blocks(data)
	if err != nil {
		return err
	}
	if err := refusePrivate(bs); err != nil {
		return err
	}
	n := 0
	for i, b := range bs {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("%w: PEM block %d: %w", ErrPEM, i+1, err)
		}
		if err := supported(c.PublicKey); err != nil {
			return fmt.Errorf("%w: certificate CN=%q: %w", ErrPEM, c.Subject.CommonName, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: no CERTIFICATE block", ErrPEM)
	}
	return nil
}

// CheckPubPEM checks an on-device public key file (PV_PVS_PUB_PEM,
// pub.pem): one or more "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE"
// blocks that all parse to RSA or ECDSA keys, and no private key.
func CheckPubPEM(data []byte) error {
	bs, err := blocks(data)
	if err != nil {
		return err
	}
	if err := refusePrivate(bs); err != nil {
		return err
	}
	n := 0
	for i, b := range bs {
		pub, ok, err := signature.PEMPublicKey(b)
		if !ok {
			continue
		}
		if err == nil {
			err = supported(pub)
		}
		if err != nil {
			return fmt.Errorf("%w: PEM block %d (%s): %w", ErrPEM, i+1, b.Type, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: no PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block", ErrPEM)
	}
	return nil
}

// supported tells whether pvs@2 can use the key: RSA (RS256) or ECDSA on
// P-256, P-384 or P-521 (ES256/384/512).
func supported(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported curve %s", k.Curve.Params().Name)
	}
	return fmt.Errorf("unsupported key type %T (want RSA or ECDSA)", pub)
}

// parseCerts reads the certificates of a PEM bundle, in order.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	return signature.ParseCertificates(data)
}

// parseKey reads the first private key of a PEM file.
func parseKey(data []byte) (crypto.Signer, error) {
	return signature.ParsePrivateKey(data)
}
