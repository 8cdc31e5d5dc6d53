package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{
		{"first", 0o600},
		{"second, longer than the first", 0o644},
		{"", 0o640},
	} {
		if err := Write(p, []byte(tc.data), tc.perm); err != nil {
			t.Fatalf("Write(%q) = %v", tc.data, err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != tc.data {
			t.Errorf("after Write(%q): content = %q, %v, want %q", tc.data, b, err, tc.data)
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != tc.perm {
			t.Errorf("after Write(%q, %v): mode = %v, %v", tc.data, tc.perm, fi.Mode().Perm(), err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temp files left)", len(ents))
	}
}

// TestWriteFails checks a failed write leaves the old file and no temp.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Write(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The target is now a non-empty directory: rename fails.
	q := filepath.Join(dir, "d")
	os.MkdirAll(filepath.Join(q, "x"), 0o755)
	err := WriteTemp(q, ".pfx-*", []byte("new"), 0o644)
	if err == nil || !strings.Contains(err.Error(), q) {
		t.Errorf("Write over a directory = %v, want an error naming %s", err, q)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".pfx-*")); len(m) != 0 {
		t.Errorf("temp files left: %q", m)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("unrelated file = %q, want old", b)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("Write into a missing directory = nil, want an error")
	}
}
