package pvtest

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestParseBuiltin(t *testing.T) {
	tests := []struct {
		in, kind, name string
		bad            bool
	}{
		{"control", "control", "control", false},
		{"nobody:app-1", "nobody", "app-1", false},
		{"crasher:c.x", "crasher", "c.x", false},
		{"bogus", "", "", true},
		{"control:a/b", "", "", true},
		{"control:..", "", "", true},
	}
	for _, tt := range tests {
		k, n, err := ParseBuiltin(tt.in)
		if (err != nil) != tt.bad || k != tt.kind || n != tt.name {
			t.Errorf("ParseBuiltin(%q) = %q, %q, %v, want %q, %q, bad=%v", tt.in, k, n, err, tt.kind, tt.name, tt.bad)
		}
	}
}

// TestWriteExport reads the tarball back: json names every object, each
// objects/<sha> entry hashes to its name, and the same content is cached.
func TestWriteExport(t *testing.T) {
	cache := t.TempDir()
	img := filepath.Join(t.TempDir(), "root.squashfs")
	os.WriteFile(img, []byte("squash"), 0o644)
	run := map[string]any{"name": "app", "type": "lxc"}
	p, err := writeExport(cache, "app", run, nil, map[string]string{"root.squashfs": img}, map[string][]byte{"lxc.container.conf": []byte("conf\n")})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var state map[string]any
	objs := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Name == "json" {
			if err := json.Unmarshal(data, &state); err != nil {
				t.Fatal(err)
			}
			continue
		}
		sum := sha256.Sum256(data)
		if got, want := h.Name, "objects/"+hex.EncodeToString(sum[:]); got != want {
			t.Errorf("entry %q, want %q", got, want)
		}
		objs[h.Name[len("objects/"):]] = true
	}
	for _, k := range []string{"app/root.squashfs", "app/lxc.container.conf"} {
		sha, _ := state[k].(string)
		if !objs[sha] {
			t.Errorf("json[%q] = %q, not among the objects %v", k, sha, objs)
		}
	}
	if state["#spec"] != "pantavisor-service-system@1" {
		t.Errorf("json #spec = %v", state["#spec"])
	}
	p2, err := writeExport(cache, "app", run, nil, map[string]string{"root.squashfs": img}, map[string][]byte{"lxc.container.conf": []byte("conf\n")})
	if err != nil || p2 != p {
		t.Errorf("second writeExport() = %q, %v, want cached %q", p2, err, p)
	}
}
