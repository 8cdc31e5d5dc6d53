package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/sign"
)

// TestRun makes a CA directory, refuses to overwrite it, issues a new
// signer from it and replaces it with -force.
func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := run([]string{"-dir", dir, "-ca-cn", "test CA", "-cn", "s1"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("run = %v", err)
	}
	caCert := read(sign.FileCACert)
	if err := run([]string{"-dir", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "use -force") {
		t.Errorf("run again = %v, want a -force error", err)
	}
	if err := run([]string{"-dir", dir, "-issue", "-cn", "s2"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("run -issue = %v", err)
	}
	if string(read(sign.FileCACert)) != string(caCert) {
		t.Errorf("-issue replaced %s", sign.FileCACert)
	}
	s, err := sign.Load(read(sign.FileSignerKey), read(sign.FileSignerCert))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Subject(), `CN="s2"`; got != want {
		t.Errorf("signer after -issue = %s, want %s", got, want)
	}
	if err := run([]string{"-dir", dir, "-force"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("run -force = %v", err)
	}
	if string(read(sign.FileCACert)) == string(caCert) {
		t.Errorf("-force kept the old %s", sign.FileCACert)
	}
	if err := run([]string{"-dir", dir, "extra"}, io.Discard, io.Discard); err == nil {
		t.Errorf("run with an argument = nil error")
	}
}
