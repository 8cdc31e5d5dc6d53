package storage

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidRevision(t *testing.T) {
	long := strings.Repeat("n", MaxLocalName)
	for _, rev := range []string{"0", "1", "42", "123456789", "locals/x", "locals/pvtx-1721068626-f9ee123b-913", "locals/" + long, "locals/a b", "locals/ünï"} {
		if err := ValidRevision(rev); err != nil {
			t.Errorf("ValidRevision(%q) = %v, want nil", rev, err)
		}
	}
	for _, rev := range []string{
		"", "01", "-1", "+1", "1.5", " 1", "1 ", "a", "current", "locals", "locals/", "locals//",
		"locals/a/b", "locals/..", "locals/.", "locals/.hidden", "../0", "../../etc", "/abs", "/0",
		"locals/../0", "0/..", "0/", "locals/" + long + "x", "locals/a\x00", "locals/a\\b", "locals/a\nb",
		"Locals/x", "locals\\x", "1234567890123456789", "locals/\xff",
	} {
		if err := ValidRevision(rev); !errors.Is(err, ErrBadRevision) {
			t.Errorf("ValidRevision(%q) = %v, want ErrBadRevision", rev, err)
		}
	}
}

func TestIsLocal(t *testing.T) {
	for _, tc := range []struct {
		rev  string
		want bool
	}{
		{"locals/a", true}, {"0", false}, {"locals/", false}, {"locals/a/b", false}, {"x/locals/a", false},
	} {
		if got := IsLocal(tc.rev); got != tc.want {
			t.Errorf("IsLocal(%q) = %v, want %v", tc.rev, got, tc.want)
		}
	}
}

func FuzzRevision(f *testing.F) {
	for _, s := range []string{"0", "17", "locals/a", "locals/a/b", "../x", "locals/..", "", "current", "locals/.x", "00"} {
		f.Add(s)
	}
	trails := filepath.Join("/storage", "trails")
	s := &Storage{root: "/storage"}
	f.Fuzz(func(t *testing.T, rev string) {
		err := ValidRevision(rev)
		if IsLocal(rev) && err != nil {
			t.Fatalf("IsLocal(%q) but ValidRevision = %v", rev, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadRevision) {
				t.Fatalf("ValidRevision(%q) = %v, want ErrBadRevision", rev, err)
			}
			return
		}
		dir := s.TrailDir(rev)
		rel, rerr := filepath.Rel(trails, dir)
		if rerr != nil || rel != filepath.FromSlash(rev) || strings.HasPrefix(rel, "..") {
			t.Fatalf("TrailDir(%q) = %s escapes or differs from %s", rev, dir, trails)
		}
		if rel == "current" || rel == "locals" || strings.HasPrefix(filepath.Base(dir), ".") {
			t.Fatalf("ValidRevision accepted reserved name %q", rev)
		}
		if strings.Count(rev, "/") > 1 || strings.ContainsAny(rev, "\x00\\") {
			t.Fatalf("ValidRevision accepted %q", rev)
		}
	})
}
