package signature

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Sentinel errors. Their texts are the upstream progress messages, so a
// caller can report err's sentinel text as the status-msg.
var (
	// ErrInvalid: a signature does not verify (bad header, untrusted
	// signer, mismatching payload).
	ErrInvalid = errors.New(progress.MsgSigFailed)
	// ErrNotCovered: strict mode found state keys no signature covers.
	ErrNotCovered = errors.New(progress.MsgSigNotCovered)
	// ErrMode: an unknown secureboot mode.
	ErrMode = errors.New("unknown secureboot mode")
)

// Mode is a PV_SECUREBOOT_MODE value.
type Mode string

// Secureboot modes.
const (
	// Disabled verifies nothing.
	Disabled Mode = "disabled"
	// Lenient verifies every signature present.
	Lenient Mode = "lenient"
	// Strict is Lenient plus: every state key outside _sigs/ is covered
	// by a verified signature.
	Strict Mode = "strict"
	// Audit is Strict but coverage failures are only logged. A signature
	// that does not verify still fails, as upstream does.
	Audit Mode = "audit"
)

// ParseMode parses a PV_SECUREBOOT_MODE value; "" is the default, lenient.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return Lenient, nil
	case Disabled, Lenient, Strict, Audit:
		return m, nil
	}
	return "", fmt.Errorf("%w %q (want disabled, audit, lenient or strict)", ErrMode, s)
}

// Defaults of Options.
const (
	DefaultEtcDir        = "/etc"
	DefaultTrustStore    = "ca-certificates"
	DefaultOEMTrustStore = "ca-oem-certificates"
)

// Options configures a Verifier.
type Options struct {
	// Mode is PV_SECUREBOOT_MODE; "" means lenient.
	Mode string
	// EtcDir is PV_SYSTEM_ETCDIR; trust material lives in
	// <EtcDir>/pantavisor/pvs/trust/. "" means /etc.
	EtcDir string
	// TrustStore and OEMTrustStore are PV_SECUREBOOT_TRUSTSTORE and
	// PV_SECUREBOOT_OEM_TRUSTSTORE: a store name (file
	// <trust dir>/<name>.crt) or an absolute path to a PEM file.
	// "" means ca-certificates and ca-oem-certificates.
	TrustStore, OEMTrustStore string
	// OEMName is PV_OEM_NAME; "" disables the OEM store.
	OEMName string
	// Now is the time certificate validity is checked at; nil means
	// time.Now.
	Now func() time.Time
	// Log receives one line per verified signature and audit findings.
	Log *slog.Logger
}

// Verifier checks states against their pvs@2 signatures.
type Verifier struct {
	mode     Mode
	trustDir string
	store    string
	oemStore string
	oemName  string
	now      func() time.Time
	log      *slog.Logger
}

// New returns a Verifier. Trust material is read at each Verify, so a
// missing trust store only matters when a signature needs it.
func New(o Options) (*Verifier, error) {
	mode, err := ParseMode(o.Mode)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		mode:     mode,
		trustDir: filepath.Join(or(o.EtcDir, DefaultEtcDir), "pantavisor", "pvs", "trust"),
		store:    or(o.TrustStore, DefaultTrustStore),
		oemStore: or(o.OEMTrustStore, DefaultOEMTrustStore),
		oemName:  o.OEMName,
		now:      o.Now,
		log:      o.Log,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Mode returns the verifier's mode.
func (v *Verifier) Mode() Mode { return v.mode }

// maxListed bounds the uncovered keys named in an error.
const maxListed = 8

// Verify checks st in the verifier's mode. A signature that does not
// verify yields an error wrapping ErrInvalid naming the signature key and
// the signer; in strict mode, uncovered keys yield one wrapping
// ErrNotCovered naming them. Every failing signature is logged; the
// first one (in key order) is returned.
func (v *Verifier) Verify(st *state.State) error {
	if v.mode == Disabled {
		return nil
	}
	if st == nil {
		return fmt.Errorf("%w: no state", ErrInvalid)
	}
	sigs := st.Signatures()
	names := make([]string, 0, len(sigs))
	for k := range sigs {
		names = append(names, k)
	}
	sort.Strings(names)
	ks := newKeySet(st)
	for _, k := range ks.keys {
		if strings.HasPrefix(k, SigsPrefix) && sigs[k] == nil {
			v.log.Warn("ignoring a _sigs entry that is not a pvs@2 signature", "key", k)
		}
	}
	covered := map[string]bool{}
	var first error
	for _, k := range names {
		res, err := v.verifyOne(st, ks, sigs[k])
		if err != nil {
			err = fmt.Errorf("%w: %s: %w", ErrInvalid, k, err)
			v.log.Error("signature failed", "sig", k, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		for _, c := range res.covered {
			covered[c] = true
		}
		v.log.Info("signature verified", "sig", k, "signer", res.signer, "signed", res.signed)
	}
	if first != nil {
		return first
	}
	if v.mode == Lenient {
		return nil
	}
	var missing []string
	for _, k := range ks.keys {
		if !covered[k] && !strings.HasPrefix(k, SigsPrefix) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	list := missing
	if len(list) > maxListed {
		list = list[:maxListed]
	}
	err := fmt.Errorf("%w: %d keys not covered: %s", ErrNotCovered, len(missing), strings.Join(list, ", "))
	if len(missing) > maxListed {
		err = fmt.Errorf("%w, …", err)
	}
	if v.mode == Audit {
		v.log.Warn("audit: state not fully covered by signatures", "uncovered", missing)
		return nil
	}
	return err
}

// result is one verified signature.
type result struct {
	covered []string
	signer  string
	signed  int
}

// verifyOne checks one signature and returns what it covers.
func (v *Verifier) verifyOne(st *state.State, ks keySet, sig *state.Signature) (result, error) {
	h := sig.Header
	if h.Typ != "PVS" {
		return result{}, fmt.Errorf("protected typ %q, want \"PVS\"", h.Typ)
	}
	alg, err := lookupAlg(h.Alg)
	if err != nil {
		return result{}, err
	}
	raw, err := decodeB64URL(sig.Sig)
	if err != nil {
		return result{}, fmt.Errorf("signature: not base64url: %w", err)
	}
	signed, covered := ks.selectKeys(sig.Key, h.Include, h.Exclude)
	payload, err := payloadOf(st, signed)
	if err != nil {
		return result{}, err
	}
	input := []byte(sig.Protected + "." + base64.RawURLEncoding.EncodeToString(payload))
	res := result{covered: covered, signed: len(signed)}

	if len(h.X5C) > 0 {
		pub, signer, err := v.chainKey(h.X5C, covered)
		res.signer = signer
		if err != nil {
			return res, err
		}
		if err := alg.verify(pub, input, raw); err != nil {
			return res, fmt.Errorf("signer %s: %w", signer, err)
		}
		return res, nil
	}
	// No x5c: the on-device pub.pem. The header's "jwk" is chosen by
	// whoever wrote the signature, so it is never trusted on its own.
	path := filepath.Join(v.trustDir, "pub.pem")
	keys, err := loadPublicKeys(path)
	if err != nil {
		return res, fmt.Errorf("no x5c and no trusted public key: %w", err)
	}
	var errs []string
	for _, k := range keys {
		err := alg.verify(k.pub, input, raw)
		if err == nil {
			res.signer = k.name
			return res, nil
		}
		if len(keys) == 1 {
			return res, fmt.Errorf("signer %s: %w", k.name, err)
		}
		errs = append(errs, k.name+": "+err.Error())
	}
	res.signer = path
	return res, fmt.Errorf("no key of %s verifies (%s): %w", path, strings.Join(errs, "; "), errBadSignature)
}

// chainKey returns the public key of the first x5c certificate after
// verifying its chain (the other x5c certificates as intermediates)
// against the trust store that applies to it.
func (v *Verifier) chainKey(x5c []string, covered []string) (crypto.PublicKey, string, error) {
	certs := make([]*x509.Certificate, 0, len(x5c))
	for i, s := range x5c {
		der, err := decodeB64Std(s)
		if err != nil {
			return nil, "x5c", fmt.Errorf("x5c[%d]: not base64: %w", i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, "x5c", fmt.Errorf("x5c[%d]: %w", i, err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	store := v.store
	if v.oemName != "" && leaf.Subject.CommonName == v.oemName && !touchesReserved(covered, v.oemName) {
		store = v.oemStore
	}
	signer := fmt.Sprintf("x5c CN=%q (%s) via trust store %s", leaf.Subject.CommonName, keyType(leaf.PublicKey), store)
	path := store
	if !filepath.IsAbs(path) {
		path = filepath.Join(v.trustDir, store+".crt")
	}
	roots, err := loadPool(path)
	if err != nil {
		return nil, signer, fmt.Errorf("trust store: %w", err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// Any EKU: mbedtls' chain verification upstream does not check it
	// (pvr's `sig ls --cacerts` asks for codeSigning).
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, signer, fmt.Errorf("signer %s: untrusted chain: %w", signer, err)
	}
	return leaf.PublicKey, signer, nil
}

// touchesReserved reports whether any key lies under bsp/ or the OEM
// configuration directory <oem>/: those only the default store may sign.
func touchesReserved(keys []string, oem string) bool {
	for _, k := range keys {
		for _, dir := range []string{"bsp", oem} {
			if k == dir || strings.HasPrefix(k, dir+"/") {
				return true
			}
		}
	}
	return false
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// decodeB64Std decodes an x5c entry: standard base64 (RFC 7515 §4.1.6),
// with or without padding.
func decodeB64Std(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}
