package metadata

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMirrorPath(t *testing.T) {
	for _, tc := range []struct {
		key, plat, rest string
		ok              bool
	}{
		{"nginx.config", "nginx", "config", true},
		{"a.b.c", "a", "b.c", true},
		{"plain", "", "", false},
		{".b", "", "", false},
		{"a.", "", "", false},
	} {
		plat, rest, ok := MirrorPath(tc.key)
		if plat != tc.plat || rest != tc.rest || ok != tc.ok {
			t.Errorf("MirrorPath(%q) = %q, %q, %v, want %q, %q, %v", tc.key, plat, rest, ok, tc.plat, tc.rest, tc.ok)
		}
	}
}

func readFile(t *testing.T, p string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestMirror(t *testing.T) {
	dir, run := t.TempDir(), t.TempDir()
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Set("nginx.conf", []byte("before"))
	s.Set("plain", []byte("x"))
	// Stale file from an earlier run.
	stale := filepath.Join(run, "user-meta.old", "gone")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("x"), 0o644)

	if err := s.Mirror(run, "user-meta"); err != nil {
		t.Fatalf("Mirror: %v", err)
	}
	if got, ok := readFile(t, filepath.Join(run, "user-meta.nginx", "conf")); !ok || got != "before" {
		t.Errorf("mirror of existing key = %q, %v, want before", got, ok)
	}
	if _, ok := readFile(t, stale); ok {
		t.Errorf("stale mirror file kept")
	}
	s.Set("nginx.conf", []byte("after"))
	s.Set("app.a.b", []byte("deep"))
	if got, _ := readFile(t, filepath.Join(run, "user-meta.nginx", "conf")); got != "after" {
		t.Errorf("mirror after Set = %q, want after", got)
	}
	if got, _ := readFile(t, filepath.Join(run, "user-meta.app", "a.b")); got != "deep" {
		t.Errorf("mirror of app.a.b = %q, want deep", got)
	}
	if err := s.Delete("nginx.conf"); err != nil {
		t.Fatal(err)
	}
	if _, ok := readFile(t, filepath.Join(run, "user-meta.nginx", "conf")); ok {
		t.Errorf("mirror kept after Delete")
	}
	if fi, err := os.Stat(filepath.Join(run, "user-meta.nginx")); err != nil || !fi.IsDir() {
		t.Errorf("mirror dir removed after Delete: %v", err)
	}
	if err := s.EnsureMirrorDirs("fresh"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(MirrorDir(run, "user-meta", "fresh")); err != nil || !fi.IsDir() {
		t.Errorf("EnsureMirrorDirs(fresh): %v", err)
	}
	if err := s.EnsureMirrorDirs("../x"); !errors.Is(err, ErrBadKey) {
		t.Errorf("EnsureMirrorDirs(../x) = %v, want ErrBadKey", err)
	}
	if err := s.Mirror(run, "a/b"); err == nil {
		t.Errorf("Mirror(run, a/b) = nil, want error")
	}
}
