package disk

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTreeDigest: the digest changes with everything mkfs.ext4 -d copies
// and only with that (not with time stamps), including after FileSums
// remembered a file's hash.
func TestTreeDigest(t *testing.T) {
	dir := t.TempDir()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	write := func(rel, data string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p(rel)), 0o755)
		if err := os.WriteFile(p(rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("objects/a", "kernel")
	write("config/x", "1")
	os.MkdirAll(p("trails/0"), 0o755)
	if err := os.Link(p("objects/a"), p("trails/0/kernel.img")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("trails/0", p("current")); err != nil {
		t.Fatal(err)
	}
	digest := func() string {
		t.Helper()
		d, err := TreeDigest(dir)
		if err != nil {
			t.Fatalf("TreeDigest() = %v", err)
		}
		return d
	}
	seen := map[string]string{digest(): "start"}
	for _, tt := range []struct {
		name   string
		change func(t *testing.T)
		same   bool // the digest is the one before the change
	}{
		{"nothing", func(t *testing.T) {}, true},
		{"time stamps", func(t *testing.T) {
			later := time.Now().Add(time.Hour)
			os.Chtimes(p("config/x"), later, later)
			os.Chtimes(p("objects"), later, later)
		}, true},
		{"content, after FileSums", func(t *testing.T) {
			if _, err := FileSums([]string{p("config/x")}); err != nil {
				t.Fatal(err)
			}
			write("config/x", "2")
		}, false},
		{"same size content", func(t *testing.T) { write("config/x", "3") }, false},
		{"mode", func(t *testing.T) { os.Chmod(p("config/x"), 0o600) }, false},
		{"directory mode", func(t *testing.T) { os.Chmod(p("config"), 0o700) }, false},
		{"symlink target", func(t *testing.T) {
			os.Remove(p("current"))
			os.Symlink("trails/1", p("current"))
		}, false},
		{"hard link becomes a copy", func(t *testing.T) {
			os.Remove(p("trails/0/kernel.img"))
			write("trails/0/kernel.img", "kernel")
		}, false},
		{"new empty file", func(t *testing.T) { write("logs/y", "") }, false},
		{"rename", func(t *testing.T) { os.Rename(p("logs/y"), p("logs/z")) }, false},
		// last: they skip the rest where unsupported
		{"owner", func(t *testing.T) {
			if err := os.Lchown(p("config/x"), 1, 1); err != nil {
				t.Skipf("chown: %v", err)
			}
		}, false},
		{"xattr", func(t *testing.T) {
			if err := unix.Lsetxattr(p("config/x"), "user.pv", []byte("1"), 0); err != nil {
				t.Skipf("xattrs: %v", err)
			}
		}, false},
	} {
		before := digest()
		tt.change(t)
		after := digest()
		if got := after == before; got != tt.same {
			t.Errorf("%s: digest unchanged = %v, want %v", tt.name, got, tt.same)
		}
		if !tt.same {
			if prev, ok := seen[after]; ok {
				t.Errorf("%s: digest equals the one after %q", tt.name, prev)
			}
			seen[after] = tt.name
		}
	}
}
