package trail

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/pantavisor/pantavisor-go/mkimage/sign"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// devSigner is the committed developer key of ca/developer.
func devSigner(t *testing.T) (*sign.Signer, []byte) {
	t.Helper()
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join("../../ca/developer", n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s, err := sign.Load(read(sign.FileSignerKey), read(sign.FileSignerCert))
	if err != nil {
		t.Fatal(err)
	}
	return s, read(sign.FileCACert)
}

func strictVerifier(t *testing.T, caPEM []byte) *signature.Verifier {
	t.Helper()
	etc := t.TempDir()
	dir := filepath.Join(etc, "pantavisor/pvs/trust")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "ca-certificates.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := signature.New(signature.Options{Mode: "strict", EtcDir: etc})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWriteSigned writes a revision with a Signer: the signatures are in
// trails/<rev>/.pvr/json as written, the whole revision passes strict
// verification read back from disk, and the BSP export carries the BSP's
// signature and device.json and verifies on its own.
func TestWriteSigned(t *testing.T) {
	s, caPEM := devSigner(t)
	src := t.TempDir()
	for name, data := range map[string]string{"kernel": "K", "initrd": "I", "root": "R"} {
		os.WriteFile(filepath.Join(src, name), []byte(data), 0o644)
	}
	var rev Revision
	for _, err := range []error{
		rev.AddObject("bsp/kernel.img", filepath.Join(src, "kernel")),
		rev.AddObject("bsp/pantavisor", filepath.Join(src, "initrd")),
		rev.AddJSON("bsp/run.json", json.RawMessage(`{"linux": "kernel.img",  "initrd": "pantavisor", "addons": []}`)),
		rev.AddJSON("bsp/src.json", map[string]string{"#spec": "bsp-manifest-src@1"}),
		rev.AddJSON("device.json", json.RawMessage(`{ }`)),
		rev.AddObject("app/root.squashfs", filepath.Join(src, "root")),
		rev.AddJSON("app/run.json", map[string]any{"#spec": "service-manifest-run@1", "name": "app", "type": "lxc", "root-volume": "root.squashfs", "volumes": []string{}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	rev.Sign(func(st *state.State) (map[string]json.RawMessage, error) {
		return s.Sign(st, []string{sign.BSP, "app"})
	})
	root := filepath.Join(t.TempDir(), "storage")
	st, err := Write(nil, root, "0", rev)
	if err != nil {
		t.Fatalf("Write = %v", err)
	}
	if got := len(st.Signatures()); got != 2 {
		t.Errorf("Write: %d signatures in the state, want 2", got)
	}
	onDisk, err := os.ReadFile(filepath.Join(root, "trails/0/.pvr/json"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := state.Parse(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	if err := strictVerifier(t, caPEM).Verify(back); err != nil {
		t.Errorf("Verify(trails/0/.pvr/json, strict) = %v, want nil", err)
	}

	var buf bytes.Buffer
	if err := Export(&buf, root, st, "bsp/", 1700000000); err != nil {
		t.Fatal(err)
	}
	doc := exportJSON(t, &buf)
	for _, k := range []string{"_sigs/bsp.json", "device.json", "bsp/src.json"} {
		if doc[k] == nil {
			t.Errorf("bsp export: no %s", k)
		}
	}
	for _, k := range []string{"_sigs/app.json", "app/run.json"} {
		if doc[k] != nil {
			t.Errorf("bsp export has %s", k)
		}
	}
	raw, _ := json.Marshal(doc)
	exp, err := state.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := strictVerifier(t, caPEM).Verify(exp); err != nil {
		t.Errorf("Verify(bsp export, strict) = %v, want nil", err)
	}
}

func TestWriteSignerErrors(t *testing.T) {
	src := filepath.Join(t.TempDir(), "k")
	os.WriteFile(src, []byte("K"), 0o644)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		fn   Signer
		want string
	}{
		{"signer fails", func(*state.State) (map[string]json.RawMessage, error) { return nil, boom }, "boom"},
		{"state key", func(*state.State) (map[string]json.RawMessage, error) {
			return map[string]json.RawMessage{"bsp/kernel.img": json.RawMessage(`{}`)}, nil
		}, "not under _sigs/"},
		{"not a signature key", func(*state.State) (map[string]json.RawMessage, error) {
			return map[string]json.RawMessage{"x.json": json.RawMessage(`{}`)}, nil
		}, "not under _sigs/"},
	} {
		var rev Revision
		rev.AddObject("bsp/kernel.img", src)
		rev.Sign(tc.fn)
		_, err := Write(nil, filepath.Join(t.TempDir(), "storage"), "0", rev)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: Write = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// exportJSON returns the "json" member of a pvr export.
func exportJSON(t *testing.T, r io.Reader) map[string]json.RawMessage {
	t.Helper()
	gr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("export: no json: %v", err)
		}
		if h.Name == "json" {
			var doc map[string]json.RawMessage
			b, _ := io.ReadAll(tr)
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			return doc
		}
	}
}

// TestWriteSignedReplaces: a signature the Signer returns replaces a
// merged one of the same key (a reference device's _sigs/bsp.json).
func TestWriteSignedReplaces(t *testing.T) {
	s, caPEM := devSigner(t)
	other, err := sign.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := other.Issue("other-signer")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := sign.KeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := sign.Load(keyPEM, sign.CertPEM(leaf))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "k")
	os.WriteFile(src, []byte("K"), 0o644)
	st0, err := state.Parse([]byte(`{"#spec":"pantavisor-service-system@1","device.json":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	old, err := foreign.Sign(st0, []string{sign.BSP})
	if err != nil {
		t.Fatal(err)
	}
	var rev Revision
	rev.AddObject("bsp/kernel.img", src)
	rev.AddJSON("bsp/run.json", map[string]string{"linux": "kernel.img"})
	rev.AddJSON("_sigs/bsp.json", old["_sigs/bsp.json"])
	rev.Sign(func(st *state.State) (map[string]json.RawMessage, error) { return s.Sign(st, []string{sign.BSP}) })
	st, err := Write(nil, filepath.Join(t.TempDir(), "storage"), "0", rev)
	if err != nil {
		t.Fatalf("Write = %v", err)
	}
	if err := strictVerifier(t, caPEM).Verify(st); err != nil {
		t.Errorf("Verify(strict) = %v, want nil (the merged _sigs/bsp.json replaced)", err)
	}
}
