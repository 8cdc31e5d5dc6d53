package boottest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/ca"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/sign"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// revision is a revision the test installs on the device through
// Pantavisor's control socket: its state JSON and the objects the factory
// revision does not have.
type revision struct {
	name    string // locals/<n>
	state   []byte
	objects map[string][]byte // by sha256
}

// debugfsCat reads a file of the ext4 storage partition at byte offset off
// of img (nothing mounted; -c: a journal left by a killed machine is not
// replayed, as GRUB does not either).
func debugfsCat(img string, off int64, path string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("debugfs", "-c", "-R", "cat "+path, fmt.Sprintf("%s?offset=%d", img, off))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("debugfs cat %s: %w: %s", path, err, stderr.Bytes())
	}
	if strings.Contains(stderr.String(), "File not found") {
		return nil, fmt.Errorf("debugfs cat %s: %w", path, os.ErrNotExist)
	}
	return out, nil
}

// factoryState reads trails/0's state JSON from the image's storage: the
// updates are derived from what the image ships, not from fixtures.
func factoryState(t *testing.T, img string, off int64) map[string]json.RawMessage {
	t.Helper()
	raw, err := debugfsCat(img, off, "/trails/0/.pvr/json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("trails/0/.pvr/json: %v", err)
	}
	return doc
}

// parse parses a state document.
func parse(t *testing.T, doc map[string]json.RawMessage) *state.State {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// signer is the key the image's factory revision was signed with:
// PVR_SIG_KEY and PVR_X5C_PATH as for the build, else the developer signer
// the default images trust.
func signer(t *testing.T) *sign.Signer {
	t.Helper()
	key, x5c := ca.DeveloperSignerKey, ca.DeveloperSignerCert
	if p := os.Getenv("PVR_SIG_KEY"); p != "" {
		var err error
		if key, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		if x5c, err = os.ReadFile(os.Getenv("PVR_X5C_PATH")); err != nil {
			t.Fatalf("PVR_SIG_KEY needs PVR_X5C_PATH: %v", err)
		}
	}
	s, err := sign.Load(key, x5c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// edit is a change to a copy of a state: set a key to an inline JSON
// value or to an object (stored with the revision).
type edit struct {
	doc     map[string]json.RawMessage
	objects map[string][]byte
}

func (e *edit) object(key string, data []byte) {
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	e.objects[sha] = data
	e.doc[key] = json.RawMessage(`"` + sha + `"`)
}

func (e *edit) inline(t *testing.T, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	e.doc[key] = b
}

// newRevision copies base, applies change and signs every part base has a
// signature for again (a changed part no longer matches its old one), as
// `pvr sig update` does: the device verifies the result like its factory
// revision.
func newRevision(t *testing.T, base map[string]json.RawMessage, name string, change func(*edit)) revision {
	t.Helper()
	e := &edit{doc: map[string]json.RawMessage{}, objects: map[string][]byte{}}
	var parts []string
	for k, v := range base {
		if p, ok := strings.CutPrefix(k, signature.SigsPrefix); ok {
			parts = append(parts, strings.TrimSuffix(p, ".json"))
			continue
		}
		e.doc[k] = v
	}
	sort.Strings(parts)
	change(e)
	// The payload signs inline values byte for byte: marshal first (which
	// compacts them), sign that, and marshal again with the signatures.
	raw, err := json.Marshal(e.doc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sigs, err := signer(t).Sign(st, parts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for k, v := range sigs {
		e.doc[k] = v
	}
	if raw, err = json.Marshal(e.doc); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Parse(raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return revision{name: name, state: raw, objects: e.objects}
}

// disk writes the revision as a pvr export tarball (json, then
// objects/<sha>) on a raw disk image of whole sectors: the guest reads it
// from the block device as a stream (`cat /dev/vdb | … pvcontrol steps
// install /proc/self/fd/0 <name>`).
func (r revision) disk(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("json", r.state)
	shas := make([]string, 0, len(r.objects))
	for sha := range r.objects {
		shas = append(shas, sha)
	}
	sort.Strings(shas)
	for _, sha := range shas {
		add("objects/"+sha, r.objects[sha])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := b.Len() % 512; n != 0 {
		b.Write(make([]byte, 512-n))
	}
	p := filepath.Join(t.TempDir(), strings.ReplaceAll(r.name, "/", "_")+".tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// addon is an initrd addon (cpio.xz4) holding one text file.
func addon(t *testing.T, path, text string) []byte {
	t.Helper()
	tr := initrd.NewTree()
	if err := tr.AddData(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := initrd.WriteXZ4(&b, tr); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hasAddon reports whether the state's bsp/run.json lists the addon name,
// whatever its compression (name.cpio.xz4, name.cpio.zst4, …).
func hasAddon(t *testing.T, doc map[string]json.RawMessage, name string) bool {
	t.Helper()
	var run struct {
		Addons []string `json:"addons"`
	}
	if err := json.Unmarshal(doc["bsp/run.json"], &run); err != nil {
		t.Fatalf("bsp/run.json: %v", err)
	}
	return slices.ContainsFunc(run.Addons, func(a string) bool { return strings.HasPrefix(a, name+".cpio.") })
}

// withAddon adds an initrd addon to the BSP: bsp/<file> and its name at
// the end of bsp/run.json's "addons" (GRUB loads it as the last
// pv-initrd.img.N, over the others).
func withAddon(t *testing.T, e *edit, file string, data []byte) {
	t.Helper()
	var run map[string]json.RawMessage
	if err := json.Unmarshal(e.doc["bsp/run.json"], &run); err != nil {
		t.Fatalf("bsp/run.json: %v", err)
	}
	var addons []string
	if a, ok := run["addons"]; ok {
		if err := json.Unmarshal(a, &addons); err != nil {
			t.Fatalf("bsp/run.json addons: %v", err)
		}
	}
	b, err := json.Marshal(append(addons, file))
	if err != nil {
		t.Fatal(err)
	}
	run["addons"] = b
	e.inline(t, "bsp/run.json", run)
	e.object("bsp/"+file, data)
}
