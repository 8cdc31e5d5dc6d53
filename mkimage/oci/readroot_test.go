package oci

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadInRoot: links resolve inside the root, an escaping link does
// not reach the host's file, a missing file is os.ErrNotExist.
func TestReadInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "lib"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/passwd"), []byte("in"), 0o644)
	os.Symlink("/lib/passwd", filepath.Join(root, "etc/passwd"))
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("host"), 0o644)
	os.Symlink("../../../../../../../.."+outside, filepath.Join(root, "etc/group"))
	if b, err := ReadInRoot(root, "etc/passwd"); err != nil || string(b) != "in" {
		t.Errorf("etc/passwd = %q, %v; want in", b, err)
	}
	if b, err := ReadInRoot(root, "etc/group"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("escaping link read %q, %v; want os.ErrNotExist", b, err)
	}
	if _, err := ReadInRoot(root, "etc"); err == nil {
		t.Error("a directory was read")
	}
}
