package sbom

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

const dep5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: foo

Files: *
Copyright: 2001 Foo Authors
License: LGPL-2.1+

Files: contrib/*
Copyright: 2005 Bar
License: BSD-3-clause or Expat

Files: odd/*
Copyright: 2009 Baz
License: foo-permissive
 Permission is granted to do anything.

License: LGPL-2.1+
 On Debian systems, see /usr/share/common-licenses/LGPL-2.1.
`

func TestParseCopyright(t *testing.T) {
	tests := []struct {
		name, in, want string
		refs           []string
	}{
		{"dep5", dep5, "(BSD-3-Clause OR MIT) AND LGPL-2.1-or-later AND LicenseRef-foo-permissive", []string{"LicenseRef-foo-permissive"}},
		{"not machine-readable", "This is libc.\nCopyright 1991 FSF\nLGPL\n", NoAssertion, nil},
		{"empty", "", NoAssertion, nil},
		{"dep5 without files", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n", NoAssertion, nil},
		{"with exception", "Format: copyright-format/1.0\n\nFiles: *\nLicense: GPL-2 with OpenSSL exception\n", "LicenseRef-GPL-2-with-OpenSSL-exception", []string{"LicenseRef-GPL-2-with-OpenSSL-exception"}},
		{"dangling operator", "Format: copyright-format/1.0\n\nFiles: *\nLicense: GPL-2+ or\n", "LicenseRef-GPL-2-or", []string{"LicenseRef-GPL-2-or"}},
		{"gpl-2 only", "Format: copyright-format/1.0\n\nFiles: *\nLicense: GPL-2\n", "GPL-2.0-only", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ParseCopyright([]byte(tt.in))
			if l.Declared != tt.want {
				t.Errorf("ParseCopyright().Declared = %q, want %q", l.Declared, tt.want)
			}
			var refs []string
			for _, r := range l.Refs {
				refs = append(refs, r.ID)
			}
			if !slices.Equal(refs, tt.refs) {
				t.Errorf("ParseCopyright().Refs = %q, want %q", refs, tt.refs)
			}
		})
	}
	if l := ParseCopyright([]byte(dep5)); l.Refs[0].Text != "Permission is granted to do anything." || l.Copyright != "2001 Foo Authors\n2005 Bar\n2009 Baz" {
		t.Errorf("ParseCopyright(dep5) = %#v", l)
	}
}

// FuzzParseCopyright: whatever a copyright file says, the result is
// NOASSERTION or an expression of known ids, LicenseRefs it defines and
// AND/OR with balanced parentheses.
func FuzzParseCopyright(f *testing.F) {
	f.Add([]byte(dep5))
	f.Add([]byte("Format: copyright-format\n\nFiles: *\nLicense: GPL-2+ and (MIT\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := ParseCopyright(data)
		if l.Declared == NoAssertion {
			return
		}
		defined := map[string]bool{}
		for _, r := range l.Refs {
			defined[r.ID] = true
		}
		known := map[string]bool{}
		for _, id := range debianLicenses {
			known[id] = true
		}
		depth := 0
		for _, tok := range strings.Fields(l.Declared) {
			depth += strings.Count(tok, "(")
			core := strings.Trim(tok, "()")
			depth -= strings.Count(tok, ")")
			if depth < 0 {
				t.Fatalf("unbalanced %q", l.Declared)
			}
			if core != "AND" && core != "OR" && !known[core] && !(defined[core] && idRe.FindString(strings.TrimPrefix(core, "LicenseRef-")) == "") {
				t.Fatalf("ParseCopyright(%q).Declared = %q: bad token %q", data, l.Declared, core)
			}
		}
		if depth != 0 {
			t.Fatalf("unbalanced %q", l.Declared)
		}
	})
}

// image is a small storage tree with everything Generate reads.
type image struct {
	storage string
	in      Input
}

func writeObject(t *testing.T, storage string, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(storage, "objects", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func mustWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// progOnce builds the Go program of the test images once.
var progOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sbom-prog-")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "hello.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, src)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, out)
	}
	return bin, nil
})

// testProgram is a small Go program with build info (the test binary is
// too big to compress under the race detector in reasonable time).
func testProgram(t *testing.T) string {
	t.Helper()
	p, err := progOnce()
	if err != nil {
		testenv.Skipf(t, "no Go toolchain to build a test program: %v", err)
	}
	return p
}

// newImage makes a storage tree whose initrd holds one file of each
// origin: a Debian package's file as is, one derived from a package, our
// program (a small Go program), a builder-made file and a hard link; with
// mksquashfs also a modules volume mounted elsewhere than its package
// puts it.
func newImage(t *testing.T) *image {
	t.Helper()
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	for _, d := range []string{"objects", "trails/0/.pvr"} {
		if err := os.MkdirAll(filepath.Join(storage, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, "deb-libfoo")
	mustWrite(t, filepath.Join(deb, "usr/lib/libfoo.so.1"), []byte("libfoo bytes"))
	mustWrite(t, filepath.Join(deb, "usr/lib/libbar.so.1"), []byte("libbar unstripped"))
	mustWrite(t, filepath.Join(deb, "lib/modules/6.1.0/kernel/foo.ko"), []byte("module foo"))
	mustWrite(t, filepath.Join(deb, "lib/modules/6.1.0/kernel/bar.ko"), []byte("module bar"))
	mustWrite(t, filepath.Join(deb, "usr/share/doc/libfoo1/copyright"), []byte(dep5))
	mustWrite(t, filepath.Join(deb, "boot/vmlinuz-6.1.0"), []byte("kernel"))
	exe := testProgram(t)
	prog, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	tr := initrd.NewTree()
	for p, data := range map[string]string{"/usr/lib/libfoo.so.1": "libfoo bytes", "/usr/lib/libbar.so.1": "libbar stripped", "/etc/pantavisor.config": "generated"} {
		if err := tr.AddData(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.AddData("/usr/bin/prog", prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddHardLink("/usr/bin/prog-link", "/usr/bin/prog"); err != nil {
		t.Fatal(err)
	}
	var cpio bytes.Buffer
	// plain newc: compressing under the race detector is slow; TestReadArchive
	// reads xz and gzip
	if err := initrd.WriteCPIO(&cpio, tr); err != nil {
		t.Fatal(err)
	}
	st := map[string]any{"#spec": "pantavisor-service-system@1",
		"bsp/pantavisor": writeObject(t, storage, cpio.Bytes()),
		"bsp/kernel.img": writeObject(t, storage, []byte("kernel")),
		"bsp/run.json":   map[string]any{"linux": "kernel.img", "initrd": "pantavisor"},
		"app/run.json":   map[string]any{"name": "app", "type": "lxc", "group": "app"},
	}
	if _, err := exec.LookPath("mksquashfs"); err == nil {
		vol := filepath.Join(dir, "modules")
		mustWrite(t, filepath.Join(vol, "kernel/foo.ko"), []byte("module foo"))
		mustWrite(t, filepath.Join(vol, "kernel/bar.ko"), []byte("module bar"))
		sq := filepath.Join(dir, "modules.squashfs")
		if out, err := exec.Command("mksquashfs", vol, sq, "-noappend", "-all-root", "-quiet").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v: %s", err, out)
		}
		data, err := os.ReadFile(sq)
		if err != nil {
			t.Fatal(err)
		}
		st["bsp/modules.squashfs"] = writeObject(t, storage, data)
	} else {
		testenv.Skipf(t, "no mksquashfs: %v", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(storage, "trails/0/.pvr/json"), data)
	return &image{storage: storage, in: Input{Name: "test-image", Epoch: 1700000000, Storage: storage,
		Debs: []Deb{{Name: "libfoo1", Version: "1:1.0-1", Arch: "amd64", SHA256: strings.Repeat("ab", 32), Source: "foo",
			DownloadLocation: "http://deb.debian.org/debian/pool/main/f/foo/libfoo1_1.0-1_amd64.deb", Root: deb}},
		Programs: map[string]string{"prog": exe}}}
}

func generate(t *testing.T, in Input) (*spdx.Document, []byte) {
	t.Helper()
	doc, err := Generate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, data
}

// related reports whether doc has a SPDXRef-a typ SPDXRef-b relationship,
// matching ids by prefix.
func related(doc *spdx.Document, a, typ, b string) bool {
	a, b = strings.TrimPrefix(a, "SPDXRef-"), strings.TrimPrefix(b, "SPDXRef-")
	for _, r := range doc.Relationships {
		if r.Relationship == typ && strings.HasPrefix(string(r.RefA.ElementRefID), a) && strings.HasPrefix(string(r.RefB.ElementRefID), b) {
			return true
		}
	}
	return false
}

func fileID(doc *spdx.Document, name string) string {
	for _, f := range doc.Files {
		if f.FileName == name {
			return string(f.FileSPDXIdentifier)
		}
	}
	return "missing:" + name
}

func TestGenerate(t *testing.T) {
	img := newImage(t)
	img.in.Cache = t.TempDir()
	_, data := generate(t, img.in)
	doc, err := Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Coverage(doc, img.storage); err != nil {
		t.Error(err)
	}
	var deb *spdx.Package
	for _, p := range doc.Packages {
		if p.PackageName == "libfoo1" {
			deb = p
		}
	}
	if deb == nil {
		t.Fatal("no package libfoo1")
	}
	if want := "(BSD-3-Clause OR MIT) AND LGPL-2.1-or-later AND LicenseRef-libfoo1-foo-permissive"; deb.PackageLicenseDeclared != want {
		t.Errorf("libfoo1 licenseDeclared = %q, want %q", deb.PackageLicenseDeclared, want)
	}
	if deb.PackageFileName != "libfoo1_1.0-1_amd64.deb" || debFileName(Deb{Name: "a", Version: "2:1.0", Arch: "all"}) != "a_1.0_all.deb" {
		t.Errorf("libfoo1 packageFileName = %q", deb.PackageFileName)
	}
	if len(deb.PackageChecksums) != 1 || deb.PackageChecksums[0].Value != img.in.Debs[0].SHA256 || deb.PackageVersion != "1:1.0-1" ||
		!strings.Contains(deb.PackageSourceInfo, "foo") || !strings.HasSuffix(deb.PackageDownloadLocation, ".deb") {
		t.Errorf("libfoo1 = %+v", deb)
	}
	for _, c := range []struct{ a, typ, b string }{
		{"SPDXRef-Package-deb-libfoo1", "CONTAINS", fileID(doc, "/usr/lib/libfoo.so.1")},
		{fileID(doc, "/usr/lib/libbar.so.1"), "GENERATED_FROM", "SPDXRef-Package-deb-libfoo1"},
		{"SPDXRef-Package-go-program-prog", "CONTAINS", fileID(doc, "/usr/bin/prog")},
		{"SPDXRef-Package-go-program-prog", "CONTAINS", fileID(doc, "/usr/bin/prog-link")},
		{fileID(doc, "/etc/pantavisor.config"), "GENERATED_FROM", "SPDXRef-Package-mkimage-generated"},
		{"SPDXRef-Package-go-program-prog", "STATIC_LINK", "SPDXRef-Package-go-module-stdlib"},
		{"SPDXRef-Package-deb-libfoo1", "CONTAINS", fileID(doc, "/kernel/foo.ko")},
		{fileID(doc, "./bsp/kernel.img"), "GENERATED_FROM", "SPDXRef-Package-deb-libfoo1"},
		{fileID(doc, "./bsp/run.json"), "GENERATED_FROM", "SPDXRef-Package-mkimage-generated"},
		{"SPDXRef-Package-trail-bsp", "CONTAINS", fileID(doc, "./bsp/pantavisor")},
		{"SPDXRef-Package-trail-app", "CONTAINS", fileID(doc, "./app/run.json")},
		{"SPDXRef-Package-image", "CONTAINS", "SPDXRef-Package-trail-app"},
		{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Package-image"},
	} {
		if !related(doc, c.a, c.typ, c.b) {
			t.Errorf("no relationship %s %s %s", c.a, c.typ, c.b)
		}
	}

	// reproducible: again from a cold and from the warm cache
	for _, cache := range []string{"", img.in.Cache} {
		in := img.in
		in.Cache = cache
		if _, again := generate(t, in); !bytes.Equal(again, data) {
			t.Errorf("Generate (cache %q) again gave other bytes", cache)
		}
	}
	in := img.in
	in.Epoch++
	if doc2, again := generate(t, in); bytes.Equal(again, data) || doc2.DocumentNamespace == doc.DocumentNamespace || doc2.CreationInfo.Created != "2023-11-14T22:13:21Z" {
		t.Errorf("another SOURCE_DATE_EPOCH: created %s, namespace %s", doc2.CreationInfo.Created, doc2.DocumentNamespace)
	}
}

func TestGenerateTampered(t *testing.T) {
	img := newImage(t)
	st, err := readState(filepath.Join(img.storage, "trails/0/.pvr/json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img.storage, "objects", st.objects["bsp/kernel.img"]), []byte("other kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), img.in); err == nil || !strings.Contains(err.Error(), "bsp/kernel.img") {
		t.Errorf("Generate(object not matching its name) = %v, want an error naming bsp/kernel.img", err)
	}
}

// TestCoverageFails: the checks fail on documents that miss a file or
// its origin, or break the schema.
func TestCoverageFails(t *testing.T) {
	img := newImage(t)
	doc, _ := generate(t, img.in)
	id := common.ElementID(fileID(doc, "/etc/pantavisor.config"))
	doc.Relationships = slices.DeleteFunc(doc.Relationships, func(r *spdx.Relationship) bool {
		return r.RefA.ElementRefID == id && r.Relationship == common.TypeRelationshipGeneratedFrom
	})
	if err := Coverage(doc, img.storage); err == nil || !strings.Contains(err.Error(), "/etc/pantavisor.config") {
		t.Errorf("Coverage(file without origin) = %v", err)
	}
	doc, _ = generate(t, img.in)
	doc.Files = slices.DeleteFunc(doc.Files, func(f *spdx.File) bool { return f.FileName == "/usr/bin/prog-link" })
	if err := Coverage(doc, img.storage); err == nil || !strings.Contains(err.Error(), "/usr/bin/prog-link") {
		t.Errorf("Coverage(missing file) = %v", err)
	}
	doc, _ = generate(t, img.in)
	doc.Files = slices.DeleteFunc(doc.Files, func(f *spdx.File) bool { return f.FileName == "./bsp/kernel.img" })
	if err := Coverage(doc, img.storage); err == nil || !strings.Contains(err.Error(), "bsp/kernel.img") {
		t.Errorf("Coverage(missing object) = %v", err)
	}

	_, data := generate(t, img.in)
	for name, edit := range map[string]func(m map[string]any){
		"bad SPDXID":          func(m map[string]any) { m["packages"].([]any)[0].(map[string]any)["SPDXID"] = "SPDXRef-a b" },
		"no downloadLocation": func(m map[string]any) { delete(m["packages"].([]any)[0].(map[string]any), "downloadLocation") },
		"unknown relationship": func(m map[string]any) {
			m["relationships"].([]any)[0].(map[string]any)["relationshipType"] = "LIKES"
		},
		"dangling relationship": func(m map[string]any) {
			m["relationships"].([]any)[0].(map[string]any)["relatedSpdxElement"] = "SPDXRef-nothing"
		},
		"bad created": func(m map[string]any) { m["creationInfo"].(map[string]any)["created"] = "yesterday" },
		"extra field": func(m map[string]any) { m["pantavisor"] = true },
	} {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		bad, _ := json.Marshal(m)
		if _, err := Validate(bad); err == nil {
			t.Errorf("Validate(%s) = nil error", name)
		}
	}
}

func TestMerge(t *testing.T) {
	img := newImage(t)
	other := &spdx.Document{SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName: "app", DocumentNamespace: "https://example.org/app-1",
		CreationInfo: &spdx.CreationInfo{Created: "2024-01-01T00:00:00Z", Creators: []common.Creator{{CreatorType: "Tool", Creator: "x"}}},
		Packages: []*spdx.Package{
			{PackageName: "nginx", PackageSPDXIdentifier: "Package-nginx", PackageVersion: "1.25", PackageDownloadLocation: "NOASSERTION",
				PackageLicenseDeclared: "BSD-2-Clause AND LicenseRef-nginx-extra", FilesAnalyzed: true,
				PackageVerificationCode: &common.PackageVerificationCode{Value: "d6a770ba38583ed4bb4525bd96e50461655d2758"}},
			{PackageName: "zlib", PackageSPDXIdentifier: "Package-zlib", PackageDownloadLocation: "NOASSERTION"},
		},
		Relationships: []*spdx.Relationship{
			{RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "Package-nginx"), Relationship: "DESCRIBES"},
			{RefA: common.MakeDocElementID("", "Package-nginx"), RefB: common.MakeDocElementID("", "Package-zlib"), Relationship: "DEPENDS_ON"},
		},
		OtherLicenses: []*spdx.OtherLicense{{LicenseIdentifier: "LicenseRef-nginx-extra", ExtractedText: "extra"}},
	}
	var buf bytes.Buffer
	if err := spdxjson.Write(other, &buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "app.spdx.json"), buf.Bytes())
	files, err := MergeFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	img.in.Merge = files
	_, data := generate(t, img.in)
	doc, err := Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.ExternalDocumentReferences) != 1 || doc.ExternalDocumentReferences[0].URI != "https://example.org/app-1" {
		t.Errorf("externalDocumentRefs = %+v", doc.ExternalDocumentReferences)
	}
	var nginx *spdx.Package
	for _, p := range doc.Packages {
		if p.PackageName == "nginx" {
			nginx = p
		}
	}
	if nginx == nil || nginx.PackageLicenseDeclared != "BSD-2-Clause AND DocumentRef-merged-1:LicenseRef-nginx-extra" || nginx.PackageVerificationCode != nil {
		t.Fatalf("merged nginx = %+v", nginx)
	}
	if !related(doc, "SPDXRef-Package-trail-app", "CONTAINS", "SPDXRef-merged-1-Package-nginx") ||
		!related(doc, "SPDXRef-merged-1-Package-nginx", "DEPENDS_ON", "SPDXRef-merged-1-Package-zlib") {
		t.Errorf("merged relationships missing: %s", data)
	}
	mustWrite(t, filepath.Join(dir, "junk.json"), []byte(`{"not":"spdx"}`))
	if files, err = MergeFiles(dir); err != nil {
		t.Fatal(err)
	}
	img.in.Merge = files
	if _, err := Generate(context.Background(), img.in); err == nil || !strings.Contains(err.Error(), "junk.json") {
		t.Errorf("Generate(merge junk) = %v, want an error naming junk.json", err)
	}
}

func TestReadArchive(t *testing.T) {
	tr := initrd.NewTree()
	tr.AddData("/bin/a", []byte("aaa"), 0o755)
	tr.AddHardLink("/bin/b", "/bin/a")
	tr.AddSymlink("/bin/c", "a")
	sum := sha256.Sum256([]byte("aaa"))
	want := []Member{{"/bin/a", hex.EncodeToString(sum[:]), "7e240de74fb1ed08fa08d38063f6a6a91462a815", 3}, {"/bin/b", hex.EncodeToString(sum[:]), "7e240de74fb1ed08fa08d38063f6a6a91462a815", 3}}
	writers := map[string]func(io.Writer, *initrd.Tree) error{"xz": initrd.WriteXZ4, "zstd": initrd.WriteZstd, "gzip": initrd.WriteGzip, "plain": initrd.WriteCPIO}
	for _, f := range initrd.Formats {
		// what the builder writes: the format's program when installed
		kind, write := f.Encoder("x86")
		writers[kind] = func(w io.Writer, t *initrd.Tree) error { return write(context.Background(), w, t) }
	}
	for name, write := range writers {
		var buf bytes.Buffer
		if err := write(&buf, tr); err != nil {
			t.Fatal(err)
		}
		ms, err := ReadArchive(buf.Bytes())
		if err != nil {
			t.Fatalf("ReadArchive(%s) = %v", name, err)
		}
		if !slices.Equal(ms, want) {
			t.Errorf("ReadArchive(%s) = %+v, want %+v", name, ms, want)
		}
	}
}

func TestReadArchiveRejects(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("not an archive"), []byte("\xfd7zXZ\x00garbage")} {
		if _, err := ReadArchive(in); err == nil {
			t.Errorf("ReadArchive(%q) = nil error", in)
		}
	}
}

func FuzzReadArchive(f *testing.F) {
	tr := initrd.NewTree()
	tr.AddData("/a", []byte("x"), 0o644)
	var buf bytes.Buffer
	initrd.WriteCPIO(&buf, tr)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ReadArchive(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if !strings.HasPrefix(m.Path, "/") || len(m.SHA256) != 64 {
				t.Fatalf("member %+v", m)
			}
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if p, err := progOnce(); err == nil {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// rpiab's BSP carries its boot FAT image gzipped: compressed, but no
// initrd, so it is described as one file rather than failing the SBOM.
func TestReadArchiveNotCpio(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("\xebX\x90mkfs.fat\x00\x02"))
	zw.Close()
	if _, err := ReadArchive(gz.Bytes()); !errors.Is(err, ErrNotArchive) {
		t.Errorf("ReadArchive(gzipped FAT) = %v, want ErrNotArchive", err)
	}
}

// TestIsArchive: every initrd format is listed by its members, whichever
// encoder wrote it (a zstd initrd once went into the SBOM as one file).
func TestIsArchive(t *testing.T) {
	tr := initrd.NewTree()
	tr.AddData("/bin/a", []byte("aaa"), 0o755)
	for _, f := range initrd.Formats {
		kind, write := f.Encoder("x86")
		var buf bytes.Buffer
		if err := write(context.Background(), &buf, tr); err != nil {
			t.Fatal(err)
		}
		if !isArchive(buf.Bytes()[:6]) {
			t.Errorf("isArchive(%s: % x) = false", kind, buf.Bytes()[:6])
		}
	}
	if isArchive([]byte("hsqs\x00\x00")) {
		t.Error("isArchive(squashfs) = true")
	}
}

// TestDescribeSquashfs: the description made from the tree a volume was
// made from is the one Generate would read by unpacking it, and Generate
// takes it from the cache (it lists the tree's files, not the image's).
func TestDescribeSquashfs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs: %v", err)
	}
	dir := t.TempDir()
	vol := filepath.Join(dir, "root")
	mustWrite(t, filepath.Join(vol, "bin/busybox"), []byte("busybox"))
	mustWrite(t, filepath.Join(vol, "etc/passwd"), []byte("root:x:0:0::/:/bin/sh\n"))
	mustWrite(t, filepath.Join(vol, "etc/empty"), nil)
	if err := os.Symlink("busybox", filepath.Join(vol, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(vol, "bin/busybox"), filepath.Join(vol, "bin/ls")); err != nil {
		t.Fatal(err)
	}
	sq := filepath.Join(dir, "root.squashfs")
	if out, err := exec.Command("mksquashfs", vol, sq, "-noappend", "-all-root", "-no-hardlinks", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	want, err := ReadSquashfs(context.Background(), sq)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	if err := DescribeSquashfs(cache, sq, vol); err != nil {
		t.Fatal(err)
	}
	sha, _, err := fileSums(sq)
	if err != nil {
		t.Fatal(err)
	}
	g := &gen{cache: cache}
	// the tree changes after the image was made: the description is the
	// cached one, so the files listed are the tree's at DescribeSquashfs
	mustWrite(t, filepath.Join(vol, "etc/later"), []byte("not in the image"))
	info, err := g.object(context.Background(), sq, sha)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "squashfs" || !reflect.DeepEqual(info.Members, want) {
		t.Errorf("described %s %+v, want squashfs %+v (unsquashfs)", info.Kind, info.Members, want)
	}
}

// TestDescribeArchive: the description made from the uncompressed data
// of an archive is the one Generate would read by decompressing it.
func TestDescribeArchive(t *testing.T) {
	tr := initrd.NewTree()
	tr.AddDir("/usr/bin", 0o755)
	tr.AddData("/usr/bin/prog", []byte("\x7fELF program"), 0o755)
	tr.AddData("/etc/empty", nil, 0o644)
	tr.AddSymlink("/usr/bin/alias", "prog")
	var raw, packed bytes.Buffer
	if err := initrd.WriteCPIO(&raw, tr); err != nil {
		t.Fatal(err)
	}
	if err := initrd.WriteZstd(&packed, tr); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "pantavisor")
	mustWrite(t, p, packed.Bytes())
	want, err := ReadArchive(packed.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	if err := DescribeArchive(cache, p, raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	sha, s1, err := fileSums(p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := (&gen{cache: cache}).object(context.Background(), p, sha)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "cpio" || info.SHA1 != s1 || len(want) != 2 || !reflect.DeepEqual(info.Members, want) {
		t.Errorf("described %s %s %+v, want cpio %s %+v (decompressed)", info.Kind, info.SHA1, info.Members, s1, want)
	}
	if err := DescribeArchive(cache, p, []byte("not newc")); err == nil {
		t.Error("DescribeArchive(not an archive) = nil error")
	}
}
