package debpkg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const showOut = `Package: busybox-static
Version: 1:1.35.0-4+b3
Architecture: amd64
Depends: libc6 (>= 2.34), foo | bar:any
Description: test
 continued line
SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

Package: other
Version: 1
`

func TestParseControl(t *testing.T) {
	recs := ParseControl([]byte(showOut))
	if len(recs) != 2 {
		t.Fatalf("ParseControl() = %d records, want 2", len(recs))
	}
	if got, want := recs[0]["Version"], "1:1.35.0-4+b3"; got != want {
		t.Errorf("Version = %q, want %q", got, want)
	}
	if got, want := recs[0]["Description"], "test\ncontinued line"; got != want {
		t.Errorf("Description = %q, want %q", got, want)
	}
	if got, want := DependNames(recs[0]["Depends"]), []string{"libc6", "foo"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DependNames() = %v, want %v", got, want)
	}
}

func TestCandidate(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"x:\n  Installed: (none)\n  Candidate: 6.1.192-2\n", "6.1.192-2"},
		{"x:\n  Candidate: (none)\n", ""},
		{"", ""},
	} {
		if got := candidate([]byte(tt.in)); got != tt.want {
			t.Errorf("candidate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add([]byte(showOut))
	f.Add([]byte("a:b\n c\n\n\n:x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range ParseControl(data) {
			if len(r) == 0 {
				t.Fatalf("empty record returned")
			}
		}
		_ = DependNames(string(data))
	})
}

// TestFetchNetwork downloads a small real package for two architectures.
// It needs the Debian archive: set PV_TEST_NETWORK=1.
func TestFetchNetwork(t *testing.T) {
	if os.Getenv("PV_TEST_NETWORK") != "1" {
		t.Skip("set PV_TEST_NETWORK=1 to fetch from the Debian archive")
	}
	ctx := context.Background()
	cache := os.Getenv("PV_TEST_DEB_CACHE")
	if cache == "" {
		cache = t.TempDir()
	}
	for _, arch := range []string{"amd64", "arm64"} {
		a, err := New(Options{Cache: cache, Arch: arch, Mirror: "http://deb.debian.org/debian", Suite: "bookworm",
			Components: []string{"main"}, Keyring: "/usr/share/keyrings/debian-archive-keyring.gpg"})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Update(ctx); err != nil {
			t.Fatalf("Update(%s) = %v", arch, err)
		}
		p, err := a.Fetch(ctx, "busybox-static", "")
		if err != nil {
			t.Fatalf("Fetch(busybox-static, %s) = %v", arch, err)
		}
		if sum, _ := fileSHA256(p.Path); sum != p.SHA256 {
			t.Errorf("cached %s sha = %s, want %s", p.Path, sum, p.SHA256)
		}
		dir := t.TempDir()
		if err := Unpack(ctx, p.Path, dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "bin/busybox")); err != nil {
			t.Errorf("Unpack(%s): %v", arch, err)
		}
		if _, err := a.Fetch(ctx, "no-such-package-pv", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("Fetch(missing) = %v, want ErrNotFound", err)
		}
	}
}

func TestCandidates(t *testing.T) {
	out := "libc6:\n  Installed: (none)\n  Candidate: 2.36-9\n  Version table:\n     2.36-9 500\nfoo:amd64:\n  Candidate: (none)\nbar:\n  Candidate: 1:2\n"
	got := candidates([]byte(out))
	if want := map[string]string{"libc6": "2.36-9", "bar": "1:2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("candidates() = %v, want %v", got, want)
	}
}
