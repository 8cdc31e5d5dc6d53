package container

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/dmverity"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// TestVerity: a built container made dm-verity has pvr dm-convert's keys;
// its hash device verifies its squashfs with the manifest's root hash
// (runtime/dmverity, and veritysetup when installed), run.json names
// "dm:root.squashfs", and two builds give the same bytes.
func TestVerity(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
	}
	src := t.TempDir()
	bb, pvc := fakeBin(t, src, "busybox"), fakeBin(t, src, "pvcontrol")
	var hashes [2][]byte
	var manifests [2]json.RawMessage
	for i := range hashes {
		e, err := Build(context.Background(), Spec{Name: "pv-mgmt", Template: Mgmt, Busybox: bb, Pvcontrol: pvc,
			Work: t.TempDir(), Epoch: 1700000000, Comp: "zstd"})
		if err != nil {
			t.Fatal(err)
		}
		if err := Verity(e, "pv-mgmt", "root.squashfs"); err != nil {
			t.Fatalf("Verity() error = %v", err)
		}
		got := strings.Join(e.Keys(), " ")
		want := "pv-mgmt/_dm/root.squashfs.json pv-mgmt/lxc.container.conf pv-mgmt/root.squashfs pv-mgmt/root.squashfs.hash pv-mgmt/run.json"
		if got != want {
			t.Fatalf("keys = %q, want %q", got, want)
		}
		m, err := dmverity.ParseManifest(e.Inline["pv-mgmt/_dm/root.squashfs.json"])
		if err != nil || m.DataDevice != "root.squashfs" || m.HashDevice != "root.squashfs.hash" {
			t.Fatalf("manifest %+v, %v", m, err)
		}
		root, _ := m.Root()
		data, hash := e.Objects["pv-mgmt/root.squashfs"], e.Objects["pv-mgmt/root.squashfs.hash"]
		if err := dmverity.Verify(data, hash, root); err != nil {
			t.Errorf("dmverity.Verify() error = %v", err)
		}
		if vs, err := exec.LookPath("veritysetup"); err == nil {
			if out, err := exec.Command(vs, "verify", data, hash, m.RootHash).CombinedOutput(); err != nil {
				t.Errorf("veritysetup verify: %v: %s", err, out)
			}
		}
		var run struct {
			Root    string   `json:"root-volume"`
			Volumes []string `json:"volumes"`
			Type    string   `json:"type"`
		}
		if err := json.Unmarshal(e.Inline["pv-mgmt/run.json"], &run); err != nil {
			t.Fatal(err)
		}
		if file, h := state.VolumeFile(run.Root); file != "root.squashfs" || h != "dm" || run.Type != "lxc" || run.Volumes == nil {
			t.Errorf("run.json = %s", e.Inline["pv-mgmt/run.json"])
		}
		hashes[i], _ = os.ReadFile(hash)
		manifests[i] = e.Inline["pv-mgmt/_dm/root.squashfs.json"]
	}
	if !bytes.Equal(hashes[0], hashes[1]) || !bytes.Equal(manifests[0], manifests[1]) {
		t.Errorf("two builds give different hash devices or manifests: %s, %s", manifests[0], manifests[1])
	}
}

// TestVerityErrors: a volume the container does not have, or that its
// run.json does not name, is an error, and nothing is added.
func TestVerityErrors(t *testing.T) {
	dir := t.TempDir()
	sq := filepath.Join(dir, "root.squashfs")
	os.WriteFile(sq, make([]byte, 8192), 0o644)
	other := filepath.Join(dir, "other.squashfs")
	os.WriteFile(other, make([]byte, 8192), 0o644)
	for name, tc := range map[string]struct {
		run, file string
	}{
		"no object":       {`{"root-volume":"root.squashfs","volumes":[]}`, "missing.squashfs"},
		"not named":       {`{"root-volume":"root.squashfs","volumes":[]}`, "other.squashfs"},
		"named with dm":   {`{"root-volume":"dm:root.squashfs","volumes":[]}`, "root.squashfs"},
		"bad run.json":    {`[]`, "root.squashfs"},
		"not a file name": {`{"root-volume":"root.squashfs"}`, "../root.squashfs"},
	} {
		e := NewEntries()
		e.Objects["c/root.squashfs"] = sq
		e.Objects["c/other.squashfs"] = other
		e.Inline["c/run.json"] = json.RawMessage(tc.run)
		if err := Verity(e, "c", tc.file); err == nil {
			t.Errorf("%s: Verity() = nil, want an error", name)
		}
		if len(e.Keys()) != 3 || string(e.Inline["c/run.json"]) != tc.run {
			t.Errorf("%s: entries changed: %v", name, e.Keys())
		}
	}
	// A volume of volumes (not the root) is converted there.
	e := NewEntries()
	e.Objects["c/other.squashfs"] = other
	e.Inline["c/run.json"] = json.RawMessage(`{"root-volume":"root.squashfs","volumes":["other.squashfs","x.bind"]}`)
	if err := Verity(e, "c", "other.squashfs"); err != nil {
		t.Fatal(err)
	}
	if got := string(e.Inline["c/run.json"]); got != `{"root-volume":"root.squashfs","volumes":["dm:other.squashfs","x.bind"]}` {
		t.Errorf("run.json = %s", got)
	}
}
