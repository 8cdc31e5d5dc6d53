package builder

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/ca"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/sign"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// otherCA writes a second CA (what PV_PVS_CERT_PEM points at in a
// product build) and a signer of it into dir and returns their paths.
func otherCA(t *testing.T) (certPath, keyPath, x5cPath, pubPath string) {
	t.Helper()
	dir := t.TempDir()
	files, err := sign.Generate(dir, "ACME test CA", "acme-signer", false)
	if err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// pub.pem of the developer signing key (raw-key signatures).
	certs, err := signature.ParseCertificates(ca.DeveloperSignerCert)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.PublicKeyPEM(certs[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPath = filepath.Join(dir, "pub.pem")
	os.WriteFile(pubPath, pub, 0o644)
	return filepath.Join(dir, sign.FileCACert), filepath.Join(dir, sign.FileSignerKey), filepath.Join(dir, sign.FileSignerCert), pubPath
}

func TestTrustFiles(t *testing.T) {
	certPath, keyPath, _, pubPath := otherCA(t)
	cert, _ := os.ReadFile(certPath)
	pub, _ := os.ReadFile(pubPath)
	for _, tc := range []struct {
		name    string
		o       Options
		want    map[string][]byte
		wantErr string
	}{
		{"default: developer CA", Options{}, map[string][]byte{trustStorePath: ca.DeveloperCert}, ""},
		{"PV_PVS_CERT_PEM and PV_PVS_PUB_PEM", Options{PvsCertPEM: certPath, PvsPubPEM: pubPath},
			map[string][]byte{trustStorePath: cert, trustPubPath: pub}, ""},
		{"missing cert", Options{PvsCertPEM: "/nonexistent.pem"}, nil, "PV_PVS_CERT_PEM: /nonexistent.pem: open"},
		{"private key as cert", Options{PvsCertPEM: keyPath}, nil, "PV_PVS_CERT_PEM: " + keyPath + ": bad PEM: PEM block 1 is a PRIVATE KEY"},
		{"pub.pem as cert", Options{PvsCertPEM: pubPath}, nil, "PV_PVS_CERT_PEM: " + pubPath + ": bad PEM: no CERTIFICATE block"},
		{"private key as pub", Options{PvsPubPEM: keyPath}, nil, "PV_PVS_PUB_PEM: " + keyPath + ": bad PEM: PEM block 1 is a PRIVATE KEY"},
	} {
		b := &run{o: tc.o, work: t.TempDir()}
		got, err := b.trustFiles()
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("%s: trustFiles() = %v, want error starting %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: trustFiles() = %v", tc.name, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: trustFiles() = %d files, want %d", tc.name, len(got), len(tc.want))
		}
		for p, data := range tc.want {
			if string(got[p]) != string(data) {
				t.Errorf("%s: trustFiles()[%s] = %d bytes, want %d", tc.name, p, len(got[p]), len(data))
			}
		}
	}
}

// TestCheckSigning: the first stage refuses a signer the image's trust
// files would not accept.
func TestCheckSigning(t *testing.T) {
	certPath, keyPath, x5cPath, pubPath := otherCA(t)
	for _, tc := range []struct {
		name    string
		o       Options
		wantErr string // "" = ok
	}{
		{"developer defaults", Options{}, ""},
		{"own CA and signer", Options{PvsCertPEM: certPath, SigKey: keyPath, SigX5C: x5cPath}, ""},
		{"own CA, developer signer", Options{PvsCertPEM: certPath}, "the image would reject its own trails/0"},
		{"raw developer key, pub.pem", Options{SigKey: filepath.Join("../../ca/developer", sign.FileSignerKey), PvsPubPEM: pubPath}, ""},
		{"raw developer key, no pub.pem", Options{SigKey: filepath.Join("../../ca/developer", sign.FileSignerKey)}, "the image would reject its own trails/0"},
		{"x5c without key", Options{SigX5C: x5cPath}, "PVR_X5C_PATH " + x5cPath + " is set without PVR_SIG_KEY"},
		{"x5c of another key", Options{SigKey: keyPath, SigX5C: filepath.Join("../../ca/developer", sign.FileSignerCert)}, "does not hold the signing key"},
	} {
		b := &run{o: tc.o, work: t.TempDir()}
		note, err := b.checkSigning()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: checkSigning() = %v, want nil", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: checkSigning() = %q, %v, want an error with %q", tc.name, note, err, tc.wantErr)
		}
	}
}

// TestStorageSigned builds trails/0 like TestTrailReproducible and reads
// its state back from disk: strict verification passes with the image's
// trust store (the developer CA) and fails with another CA, i.e. an image
// built with PV_PVS_CERT_PEM of another CA refuses a developer-signed
// revision. The stepskel's loose files get a _pvskel signature. With
// PVR_MERGE_SRC only the BSP is signed.
func TestStorageSigned(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
	}
	in := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bb, pvc, kern := write("busybox", "#!/bin/sh\n"), write("pvcontrol", "#!/bin/sh\n"), write("kernel", "bzImage")
	// A stepskel with device.json (the BSP signature's) and a loose file
	// (the _pvskel signature's).
	os.MkdirAll(filepath.Join(in, "skel"), 0o755)
	write("skel/device.json", "{}")
	write("skel/extra.txt", "hello")
	r := &recipe.Recipe{Name: "t", Arch: "amd64", Bootloader: recipe.Bootloader{Type: recipe.BootGrub},
		Vendor:     recipe.Vendor{StepSkel: "skel"},
		Containers: []recipe.Container{{Name: "pv-mgmt", Template: "mgmt"}, {Name: "pv-network", Template: "network"}}}
	out := t.TempDir()
	b := &run{o: Options{Repo: in, Cache: t.TempDir(), Epoch: 1700000000, Progress: io.Discard}, r: r, work: out, res: &Result{Sizes: map[string]int64{}}}
	bsp := &bspFiles{Objects: map[string]string{"kernel.img": kern}, JSON: map[string]any{"run.json": map[string]any{"linux": "kernel.img"}, "src.json": map[string]any{"#spec": "bsp-manifest-src@1"}}}
	if _, err := b.makeStorage(context.Background(), &packages{Busybox: bb}, &binaries{StaticPvcontrol: pvc}, bsp); err != nil {
		t.Fatalf("makeStorage() = %v", err)
	}
	data, err := os.ReadFile(filepath.Join(out, "storage/trails/0/.pvr/json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for k := range st.Signatures() {
		sigs = append(sigs, k)
	}
	if got, want := len(sigs), 4; got != want {
		t.Errorf("trails/0 signatures = %v, want bsp, pv-mgmt, pv-network, _pvskel", sigs)
	}
	certPath, _, _, _ := otherCA(t)
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"developer CA", Options{}, nil},
		{"PV_PVS_CERT_PEM another CA", Options{PvsCertPEM: certPath}, signature.ErrInvalid},
	} {
		v := strictOver(t, &run{o: tc.o, work: t.TempDir()})
		if err := v.Verify(st); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: Verify(trails/0, strict) = %v, want %v", tc.name, err, tc.want)
		}
	}

	// The BSP only when the containers come from a reference device.
	b.o.MergeSrc = "/reference"
	if got := b.signParts(st); len(got) != 1 || got[0] != sign.BSP {
		t.Errorf("signParts(with PVR_MERGE_SRC) = %v, want [bsp]", got)
	}
}

// strictOver returns a strict verifier over b's trust files.
func strictOver(t *testing.T, b *run) *signature.Verifier {
	t.Helper()
	files, err := b.trustFiles()
	if err != nil {
		t.Fatal(err)
	}
	etc := t.TempDir()
	for p, data := range files {
		dst := filepath.Join(etc, strings.TrimPrefix(p, "/etc/"))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := signature.New(signature.Options{Mode: "strict", EtcDir: etc})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestStorageSignedMerge merges a signed reference device
// (PVR_MERGE_SRC, a pvr export): its container keeps its signature, its
// _sigs/bsp.json (for a BSP the image replaces) is replaced by the
// build's, and the build fails unless the image trusts the reference
// device's CA too.
func TestStorageSignedMerge(t *testing.T) {
	in := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	refRoot, refState, certPath := signedReference(t)
	export := filepath.Join(in, "ref.tgz")
	f, err := os.Create(export)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.Export(f, refRoot, refState, "", 1700000000); err != nil {
		t.Fatal(err)
	}
	f.Close()

	devCA, _ := os.ReadFile(filepath.Join("../../ca/developer", sign.FileCACert))
	otherPEM, _ := os.ReadFile(certPath)
	bundle := write("bundle.crt", string(devCA)+string(otherPEM))
	kern := write("kernel", "bzImage")
	r := &recipe.Recipe{Name: "t", Arch: "amd64", Bootloader: recipe.Bootloader{Type: recipe.BootGrub}}
	for _, tc := range []struct {
		name    string
		cert    string
		wantErr string
	}{
		{"developer CA only", "", "the image needs that CA"},
		{"bundle of both CAs", bundle, ""},
	} {
		out := t.TempDir()
		b := &run{o: Options{Repo: in, Cache: t.TempDir(), Epoch: 1700000000, MergeSrc: export, PvsCertPEM: tc.cert, Progress: io.Discard},
			r: r, work: out, res: &Result{Sizes: map[string]int64{}}}
		bsp := &bspFiles{Objects: map[string]string{"kernel.img": kern}, JSON: map[string]any{"run.json": map[string]any{"linux": "kernel.img"}}}
		_, err := b.makeStorage(context.Background(), &packages{}, &binaries{}, bsp)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: makeStorage() = %v, want an error with %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: makeStorage() = %v", tc.name, err)
		}
		data, err := os.ReadFile(filepath.Join(out, "storage/trails/0/.pvr/json"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := state.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := strictOver(t, b).Verify(st); err != nil {
			t.Errorf("%s: Verify(trails/0, strict) = %v, want nil", tc.name, err)
		}
		sigs := st.Signatures()
		if got, want := signerCN(t, sigs["_sigs/bsp.json"]), "pv-developer-001"; got != want {
			t.Errorf("%s: _sigs/bsp.json signer = %q, want %q (the build's)", tc.name, got, want)
		}
		if got, want := signerCN(t, sigs["_sigs/pv-app.json"]), "acme-signer"; got != want {
			t.Errorf("%s: _sigs/pv-app.json signer = %q, want %q (the reference device's)", tc.name, got, want)
		}
	}
}

// signerCN returns the CN of a signature's x5c leaf.
func signerCN(t *testing.T, sig *state.Signature) string {
	t.Helper()
	if sig == nil || len(sig.Header.X5C) == 0 {
		return ""
	}
	der, err := base64.StdEncoding.DecodeString(sig.Header.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.CommonName
}

// TestVerifyErrorCauseFirst: the cause (the verifier's error) comes
// before the hint, so a tampered payload reads as one.
func TestVerifyErrorCauseFirst(t *testing.T) {
	cause := errors.New("_sigs/pv-app.json: signature does not match payload")
	err := verifyError(cause, true)
	msg := err.Error()
	if !errors.Is(err, cause) {
		t.Errorf("verifyError() = %v, does not wrap the cause", err)
	}
	if i, j := strings.Index(msg, cause.Error()), strings.Index(msg, "PV_PVS_CERT_PEM"); i < 0 || j < 0 || i > j {
		t.Errorf("verifyError() = %q, want the cause before the CA hint", msg)
	}
	if msg := verifyError(cause, false).Error(); strings.Contains(msg, "PV_PVS_CERT_PEM") {
		t.Errorf("verifyError(no merge) = %q, want no PVR_MERGE_SRC hint", msg)
	}
}

// TestUseSrcBSP: PVR_USE_SRC_BSP=yes puts the reference device's BSP
// into trails/0 (checked objects, its run.json) beside its containers,
// signed by the build.
func TestUseSrcBSP(t *testing.T) {
	in := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var ref trail.Revision
	for _, err := range []error{
		ref.AddObject("bsp/kernel.img", write("refkernel", "the device's kernel")),
		ref.AddObject("bsp/pantavisor", write("refinitrd", "the device's initrd")),
		ref.AddJSON("bsp/run.json", map[string]any{"linux": "kernel.img", "initrd": "pantavisor", "from": "device"}),
		ref.AddObject("pv-app/root.squashfs", write("root", "R")),
		ref.AddObject("pv-app/lxc.container.conf", write("conf", "C")),
		ref.AddJSON("pv-app/run.json", map[string]any{"#spec": "service-manifest-run@1", "name": "pv-app", "type": "lxc",
			"root-volume": "root.squashfs", "config": "lxc.container.conf", "volumes": []string{}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	refRoot := filepath.Join(t.TempDir(), "ref")
	refState, err := trail.Write(nil, refRoot, "0", ref)
	if err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(in, "ref.tgz")
	f, err := os.Create(export)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.Export(f, refRoot, refState, "", 1700000000); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out := t.TempDir()
	b := &run{o: Options{Repo: in, Cache: t.TempDir(), Epoch: 1700000000, MergeSrc: export, UseSrcBSP: true, Progress: io.Discard},
		r: &recipe.Recipe{Name: "t", Arch: "amd64", Bootloader: recipe.Bootloader{Type: recipe.BootGrub}}, work: out, res: &Result{Sizes: map[string]int64{}}}
	bsp, _, err := b.sourceBSP()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.makeStorage(context.Background(), &packages{}, &binaries{}, bsp); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "storage/trails/0/.pvr/json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := refState.Object("bsp/kernel.img")
	if got, _ := st.Object("bsp/kernel.img"); got != want {
		t.Errorf("trails/0 bsp/kernel.img = %s, want the device's %s", got, want)
	}
	if raw, _ := st.Raw("bsp/run.json"); !strings.Contains(string(raw), `"from":"device"`) {
		t.Errorf("trails/0 bsp/run.json = %s, want the device's", raw)
	}
	if _, ok := st.Object("pv-app/root.squashfs"); !ok {
		t.Error("trails/0 lacks the device's container pv-app")
	}
	if got, want := signerCN(t, st.Signatures()["_sigs/bsp.json"]), "pv-developer-001"; got != want {
		t.Errorf("_sigs/bsp.json signer = %q, want %q (the build's)", got, want)
	}
	if _, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Out: t.TempDir(), UseSrcBSP: true}); err == nil || !strings.Contains(err.Error(), "PVR_MERGE_SRC") {
		t.Errorf("Build(PVR_USE_SRC_BSP without PVR_MERGE_SRC) = %v", err)
	}
}

// signedReference writes the storage of a reference device signed by
// another CA (otherCA) at refRoot: trails/0 with a BSP and a container
// pv-app, and objects/. certPath is that CA's certificate.
func signedReference(t *testing.T) (refRoot string, refState *state.State, certPath string) {
	t.Helper()
	in := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPath, keyPath, x5cPath, _ := otherCA(t)
	keyPEM, _ := os.ReadFile(keyPath)
	x5cPEM, _ := os.ReadFile(x5cPath)
	foreign, err := sign.Load(keyPEM, x5cPEM)
	if err != nil {
		t.Fatal(err)
	}
	var ref trail.Revision
	for _, err := range []error{
		ref.AddObject("bsp/kernel.img", write("refkernel", "old kernel")),
		ref.AddJSON("bsp/run.json", map[string]any{"linux": "kernel.img"}),
		ref.AddObject("pv-app/root.squashfs", write("root", "R")),
		ref.AddObject("pv-app/lxc.container.conf", write("conf", "C")),
		ref.AddJSON("pv-app/run.json", map[string]any{"#spec": "service-manifest-run@1", "name": "pv-app", "type": "lxc",
			"root-volume": "root.squashfs", "config": "lxc.container.conf", "volumes": []string{}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ref.Sign(func(st *state.State) (map[string]json.RawMessage, error) {
		return foreign.Sign(st, []string{sign.BSP, "pv-app"})
	})
	refRoot = filepath.Join(t.TempDir(), "ref")
	refState, err = trail.Write(nil, refRoot, "0", ref)
	if err != nil {
		t.Fatal(err)
	}
	return refRoot, refState, certPath
}
