package builder

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/ca"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/sign"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Secure boot material of the image (ca/README.md).
const (
	// devCA names the public developer CA (package ca, ca/developer).
	devCA = "developer CA ca/developer"
	// trustDir is the initrd's pvs trust directory
	// (<PV_SYSTEM_ETCDIR>/pantavisor/pvs/trust, runtime/signature).
	trustDir = "/etc/pantavisor/pvs/trust"
)

// Trust files of the initrd, by path.
var (
	trustStorePath = path.Join(trustDir, signature.DefaultTrustStore+".crt")
	trustPubPath   = path.Join(trustDir, "pub.pem")
)

// trustFiles returns the initrd's pvs trust files by path:
// ca-certificates.crt from PV_PVS_CERT_PEM (default: the developer CA)
// and, with PV_PVS_PUB_PEM, pub.pem. Both are checked as PEM.
func (b *run) trustFiles() (map[string][]byte, error) {
	cert := ca.DeveloperCert
	if b.o.PvsCertPEM != "" {
		var err error
		cert, err = os.ReadFile(b.o.PvsCertPEM)
		if err == nil {
			err = sign.CheckCertPEM(cert)
		}
		if err != nil {
			return nil, fmt.Errorf("PV_PVS_CERT_PEM: %s: %w", b.o.PvsCertPEM, err)
		}
	}
	files := map[string][]byte{trustStorePath: cert}
	if b.o.PvsPubPEM != "" {
		pub, err := os.ReadFile(b.o.PvsPubPEM)
		if err == nil {
			err = sign.CheckPubPEM(pub)
		}
		if err != nil {
			return nil, fmt.Errorf("PV_PVS_PUB_PEM: %s: %w", b.o.PvsPubPEM, err)
		}
		files[trustPubPath] = pub
	}
	return files, nil
}

// loadSigner reads the key trails/0 is signed with: PVR_SIG_KEY and
// PVR_X5C_PATH (no x5c when only the key is given), default the
// developer signer.
func (b *run) loadSigner() (*sign.Signer, error) {
	keyPath, x5cPath := b.o.SigKey, b.o.SigX5C
	if keyPath == "" {
		if x5cPath != "" {
			return nil, fmt.Errorf("PVR_X5C_PATH %s is set without PVR_SIG_KEY", x5cPath)
		}
		return sign.Load(ca.DeveloperSignerKey, ca.DeveloperSignerCert)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("PVR_SIG_KEY: %w", err)
	}
	var x5c []byte
	if x5cPath != "" {
		if x5c, err = os.ReadFile(x5cPath); err != nil {
			return nil, fmt.Errorf("PVR_X5C_PATH: %w", err)
		}
	}
	s, err := sign.Load(key, x5c)
	if err != nil {
		return nil, fmt.Errorf("PVR_SIG_KEY %s, PVR_X5C_PATH %s: %w", keyPath, x5cPath, err)
	}
	return s, nil
}

// trustVerifier returns the device's default verifier (lenient) over the
// trust files the initrd gets, staged in the work directory.
func (b *run) trustVerifier() (*signature.Verifier, error) {
	files, err := b.trustFiles()
	if err != nil {
		return nil, err
	}
	etc := filepath.Join(b.work, "pvs-etc")
	if err := os.RemoveAll(etc); err != nil {
		return nil, err
	}
	for p, data := range files {
		dst := filepath.Join(etc, strings.TrimPrefix(p, "/etc/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return nil, err
		}
	}
	return signature.New(signature.Options{Mode: string(signature.Lenient), EtcDir: etc})
}

// checkSigning is the first stage: the trust files and the signing key
// are read and a sample signature is verified against the trust files,
// so a key the image would not trust fails the build before it starts.
func (b *run) checkSigning() (string, error) {
	s, err := b.loadSigner()
	if err != nil {
		return "", err
	}
	v, err := b.trustVerifier()
	if err != nil {
		return "", err
	}
	sample, err := state.Parse([]byte(`{"#spec":"` + state.Spec + `","device.json":{}}`))
	if err != nil {
		return "", err
	}
	sigs, err := s.Sign(sample, []string{sign.BSP})
	if err != nil {
		return "", err
	}
	doc := map[string]json.RawMessage{"#spec": json.RawMessage(`"` + state.Spec + `"`), "device.json": json.RawMessage(`{}`)}
	for k, v := range sigs {
		doc[k] = v
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	signed, err := state.Parse(raw)
	if err != nil {
		return "", err
	}
	if err := v.Verify(signed); err != nil {
		return "", fmt.Errorf("the image would reject its own trails/0: signer %s is not trusted by PV_PVS_CERT_PEM/PV_PVS_PUB_PEM "+
			"(set PVR_SIG_KEY and PVR_X5C_PATH to a key they trust): %w", s.Subject(), err)
	}
	trust := devCA
	if b.o.PvsCertPEM != "" {
		trust = b.o.PvsCertPEM
	}
	if b.o.PvsPubPEM != "" {
		trust += " + pub.pem " + b.o.PvsPubPEM
	}
	return fmt.Sprintf("(signer %s, trust %s)", s.Subject(), trust), nil
}

// signParts returns the parts of st the build signs: the BSP, and each
// container of the recipe the build made (not PVR_MERGE_SRC's) that has
// no signature of its own.
func (b *run) signParts(st *state.State) []string {
	var parts []string
	for _, k := range st.Keys() {
		if strings.HasPrefix(k, sign.BSP+"/") {
			parts = append(parts, sign.BSP)
			break
		}
	}
	if b.o.MergeSrc != "" {
		return parts
	}
	sigs := st.Signatures()
	for _, c := range b.r.Containers {
		if _, ok := st.Raw(c.Name + "/run.json"); !ok || sigs[signature.SigKey(c.Name)] != nil {
			continue
		}
		parts = append(parts, c.Name)
	}
	return parts
}

// signer returns the trail.Signer of trails/0: it signs signParts and
// verifies the result as the device will (lenient, the image's trust
// files), reporting what strict mode would find uncovered.
func (b *run) signer() trail.Signer {
	return func(st *state.State) (map[string]json.RawMessage, error) {
		s, err := b.loadSigner()
		if err != nil {
			return nil, err
		}
		parts := b.signParts(st)
		sigs, err := s.Sign(st, parts)
		if err != nil {
			return nil, err
		}
		signed, err := withSignatures(st, sigs)
		if err != nil {
			return nil, err
		}
		// The stepskel's files outside the parts (device.json is the
		// BSP's): one _pvskel signature, as meta-pantavisor signs them.
		loose, err := b.looseSkelKeys(signed)
		if err != nil {
			return nil, err
		}
		if len(loose) > 0 {
			k, doc, err := s.SignKeys(st, sign.SkelPart, loose)
			if err != nil {
				return nil, err
			}
			sigs[k] = doc
			if signed, err = withSignatures(st, sigs); err != nil {
				return nil, err
			}
		}
		v, err := b.trustVerifier()
		if err != nil {
			return nil, err
		}
		if err := v.Verify(signed); err != nil {
			return nil, verifyError(err, b.o.MergeSrc != "")
		}
		keys := make([]string, 0, len(sigs))
		for k := range sigs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(progress(b.o.Progress), "    signed %s by %s\n", strings.Join(keys, " "), s.Subject())
		if ns := signature.Inspect(signed).NotSeen; len(ns) > 0 {
			fmt.Fprintf(progress(b.o.Progress), "    %d keys of trails/0 are not signed (PV_SECUREBOOT_MODE=strict refuses them): %s\n", len(ns), strings.Join(ns, " "))
		}
		return sigs, nil
	}
}

// addTrust adds the pvs trust files (trustFiles) to the initrd tree.
func (b *run) addTrust(t *initrd.Tree) error {
	files, err := b.trustFiles()
	if err != nil {
		return err
	}
	for p, data := range files {
		if err := t.AddData(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// progress is w, or io.Discard when nil (Build sets it; stage tests may not).
func progress(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// withSignatures returns st with sigs added.
func withSignatures(st *state.State, sigs map[string]json.RawMessage) (*state.State, error) {
	doc := map[string]json.RawMessage{"#spec": json.RawMessage(`"` + state.Spec + `"`)}
	for _, k := range st.Keys() {
		doc[k], _ = st.Raw(k)
	}
	for k, v := range sigs {
		doc[k] = v
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return state.Parse(raw)
}

// looseSkelKeys returns the keys of the recipe's vendor stepskel that no
// signature of st covers, unless st already has a _pvskel signature.
func (b *run) looseSkelKeys(st *state.State) ([]string, error) {
	if b.r.Vendor.StepSkel == "" || st.Signatures()[signature.SigKey(sign.SkelPart)] != nil {
		return nil, nil
	}
	uncovered := map[string]bool{}
	for _, k := range signature.Inspect(st).NotSeen {
		uncovered[k] = true
	}
	dir := b.repoFile(b.r.Vendor.StepSkel)
	var keys []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if k := filepath.ToSlash(rel); uncovered[k] {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vendor.stepskel: %w", err)
	}
	sort.Strings(keys)
	return keys, nil
}

// verifyError says why the signed trails/0 does not verify: the cause
// first, then what may help (a merged device signed by another CA).
func verifyError(err error, merged bool) error {
	hint := ""
	if merged {
		hint = " (if PVR_MERGE_SRC is signed by another CA, the image needs that CA: set PV_PVS_CERT_PEM to a bundle of it and the CA of PVR_SIG_KEY)"
	}
	return fmt.Errorf("signed trails/0 does not verify with the image's trust files: %w%s", err, hint)
}
