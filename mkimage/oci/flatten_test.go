package oci

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// ent is one tar entry of a test layer.
type ent struct {
	name, link, body string
	typ              byte
	mode             int64
	uid              int
	xattr            map[string]string
	major, minor     int64
}

func layerTar(t testing.TB, es ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.uid,
			Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattr {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Skipf("unencodable entry: %v", err) // fuzzed names tar cannot hold
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return b.Bytes()
}

type memLayer []byte

func (m memLayer) Uncompressed() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m)), nil }

func dir(n string) ent          { return ent{name: n, typ: tar.TypeDir} }
func file(n, body string) ent   { return ent{name: n, typ: tar.TypeReg, body: body} }
func symlink(n, to string) ent  { return ent{name: n, typ: tar.TypeSymlink, link: to} }
func hardlink(n, to string) ent { return ent{name: n, typ: tar.TypeLink, link: to} }

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "flattening sets owners and makes device nodes: needs root")
	}
}

func TestFlatten(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	l1 := layerTar(t,
		dir("etc/"), file("etc/keep", "k"), file("etc/gone", "g"),
		dir("opq/"), file("opq/old", "o"), dir("opq/sub/"), file("opq/sub/deep", "d"),
		dir("usr/"), dir("usr/lib/"), symlink("lib", "usr/lib"),
		file("bin/tool", "T"), hardlink("bin/tool2", "bin/tool"),
		ent{name: "bin/su", typ: tar.TypeReg, body: "su", mode: 0o4755},
		ent{name: "bin/ping", typ: tar.TypeReg, body: "p", mode: 0o755, xattr: map[string]string{"user.pv": "cap"}},
		ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		ent{name: "home/u/", typ: tar.TypeDir, mode: 0o700, uid: 1000},
		ent{name: "ro/", typ: tar.TypeDir, mode: 0o555}, file("ro/in", "r"),
		file("replaced", "file"),
		dir("wasdir/"), file("wasdir/inner", "i"),
	)
	l2 := layerTar(t,
		file("etc/.wh.gone", ""),
		dir("opq/"), file("opq/new", "n"), file("opq/.wh..wh..opq", ""),
		file("lib/libx.so", "via symlink"), // a relative link, resolved beneath the root
		dir("replaced/"), file("replaced/now-a-dir", "x"),
		file("bin/.wh.tool2", ""),
		file("wasdir", "now a file"),
	)
	if err := Flatten(root, []Layer{memLayer(l1), memLayer(l2)}); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	for p, want := range map[string]string{"etc/keep": "k", "opq/new": "n", "usr/lib/libx.so": "via symlink", "replaced/now-a-dir": "x", "wasdir": "now a file", "ro/in": "r", "bin/tool": "T"} {
		if got := read(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"etc/gone", "opq/old", "opq/sub", "bin/tool2"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after whiteout: %v, want gone", p, err)
		}
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(root, "bin/su"), &st)
	if st.Mode&0o7777 != 0o4755 {
		t.Errorf("bin/su mode %o, want 4755", st.Mode&0o7777)
	}
	unix.Lstat(filepath.Join(root, "dev/null"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 || st.Mode&0o777 != 0o666 {
		t.Errorf("dev/null = mode %o rdev %d:%d, want char 1:3 666", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	unix.Lstat(filepath.Join(root, "home/u"), &st)
	if st.Uid != 1000 || st.Mode&0o777 != 0o700 {
		t.Errorf("home/u = uid %d mode %o, want 1000 700", st.Uid, st.Mode&0o777)
	}
	unix.Lstat(filepath.Join(root, "ro"), &st)
	if st.Mode&0o777 != 0o555 {
		t.Errorf("ro mode %o, want 555", st.Mode&0o777)
	}
	buf := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(root, "bin/ping"), "user.pv", buf); err != nil || string(buf[:n]) != "cap" {
		t.Errorf("bin/ping xattr user.pv = %q, %v; want cap", buf[:max(n, 0)], err)
	}
	if l, _ := os.Readlink(filepath.Join(root, "lib")); l != "usr/lib" {
		t.Errorf("lib -> %q, want usr/lib", l)
	}
}

// TestFlattenHardLinkSurvives: a hard link keeps its data when the first
// name is whited out by a later layer.
func TestFlattenHardLink(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	l1 := layerTar(t, file("a", "data"), hardlink("b", "a"))
	l2 := layerTar(t, file(".wh.a", ""))
	if err := Flatten(root, []Layer{memLayer(l1), memLayer(l2)}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "b")); string(b) != "data" {
		t.Errorf("b = %q, %v; want data", b, err)
	}
}

// TestFlattenRefuses: entries that would write outside the root.
func TestFlattenRefuses(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name string
		es   []ent
	}{
		{"dotdot", []ent{file("../escape", "x")}},
		{"dotdot inside", []ent{dir("a/"), file("a/../../escape", "x")}},
		{"absolute link as dir", []ent{symlink("evil", "/"), file("evil/escape", "x")}},
		{"escaping relative link", []ent{symlink("evil", "../.."), file("evil/escape", "x")}},
		{"link through link", []ent{dir("d/"), symlink("d/up", "../../.."), file("d/up/escape", "x")}},
		{"hard link out", []ent{hardlink("h", "../../etc/passwd")}},
		{"hard link through link", []ent{symlink("evil", "/etc"), hardlink("h", "evil/passwd")}},
		{"whiteout through link", []ent{symlink("evil", "/tmp"), file("evil/.wh.x", "")}},
		{"opaque through link", []ent{symlink("evil", "/tmp"), file("evil/.wh..wh..opq", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			root := filepath.Join(top, "a", "b", "root")
			os.MkdirAll(root, 0o755)
			err := Flatten(root, []Layer{memLayer(layerTar(t, tc.es...))})
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Flatten = %v, want %v", err, ErrUnsafePath)
			}
			if _, err := os.Lstat(filepath.Join(top, "a", "escape")); err == nil {
				t.Errorf("a file was written outside the root")
			}
		})
	}
}

// FuzzFlatten feeds arbitrary names and link targets: whatever the
// layer, nothing appears outside the root.
func FuzzFlatten(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root")
	}
	f.Add("a/b", "../x", "a/b/c")
	f.Add("evil", "/", "evil/x")
	f.Add("l", "..", "l/.wh..wh..opq")
	f.Add("d/e", "../../..", "d/e/.wh.x")
	f.Fuzz(func(t *testing.T, n1, link, n2 string) {
		top := t.TempDir()
		root := filepath.Join(top, "in", "root")
		os.MkdirAll(root, 0o755)
		os.WriteFile(filepath.Join(top, "sentinel"), []byte("s"), 0o644)
		l := layerTar(t, symlink(n1, link), file(n2, "x"), hardlink(n2+"h", link), dir(n2+"/"))
		Flatten(root, []Layer{memLayer(l)})
		ents, _ := os.ReadDir(top)
		if len(ents) != 2 {
			t.Fatalf("outside the root: %v", ents)
		}
		in, _ := os.ReadDir(filepath.Join(top, "in"))
		if len(in) != 1 {
			t.Fatalf("beside the root: %v", in)
		}
		if b, _ := os.ReadFile(filepath.Join(top, "sentinel")); string(b) != "s" {
			t.Fatalf("sentinel changed: %q", b)
		}
	})
}
