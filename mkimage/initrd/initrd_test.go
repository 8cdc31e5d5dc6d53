package initrd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func sampleTree(t *testing.T) *Tree {
	t.Helper()
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	for _, err := range []error{
		tr.AddFile("/usr/bin/tool", src, 0),
		tr.AddHardLink("/usr/sbin/tool", "/usr/bin/tool"),
		tr.AddSymlink("/init", "usr/bin/tool"),
		tr.AddDir("/proc", 0o555),
		tr.AddCharDev("/dev/console", 0o600, 5, 1),
		tr.AddData("/etc/pantavisor.config", []byte("a=b\n"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func readAll(t *testing.T, data []byte) []cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(data)))
	if err != nil {
		t.Fatalf("ReadAllRecords() = %v", err)
	}
	return recs
}

func TestWriteCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCPIO(&buf, sampleTree(t)); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, buf.Bytes())
	var names []string
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		names = append(names, r.Name)
		byName[r.Name] = r
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("record %s: mtime/uid/gid = %d/%d/%d, want 0", r.Name, r.MTime, r.UID, r.GID)
		}
	}
	want := []string{"dev", "dev/console", "etc", "etc/pantavisor.config", "init", "proc", "usr", "usr/bin", "usr/bin/tool", "usr/sbin", "usr/sbin/tool"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("record names = %v, want %v", names, want)
	}
	a, b := byName["usr/bin/tool"], byName["usr/sbin/tool"]
	if a.Ino != b.Ino || a.NLink != 2 || b.NLink != 2 {
		t.Errorf("hard link ino/nlink = %d/%d and %d/%d, want shared ino and nlink 2", a.Ino, a.NLink, b.Ino, b.NLink)
	}
	if a.FileSize == 0 || b.FileSize != 0 {
		t.Errorf("hard link sizes = %d, %d, want data only in the first", a.FileSize, b.FileSize)
	}
	if c := byName["dev/console"]; c.Rmajor != 5 || c.Rminor != 1 || c.Mode&0o170000 != modeChar {
		t.Errorf("dev/console = mode %o %d:%d, want char 5:1", c.Mode, c.Rmajor, c.Rminor)
	}
	if l := byName["init"]; l.Mode&0o170000 != modeSymlink {
		t.Errorf("init mode = %o, want symlink", l.Mode)
	}
}

func TestReproducible(t *testing.T) {
	for name, w := range goWriters {
		var a, b bytes.Buffer
		if err := w(&a, sampleTree(t)); err != nil {
			t.Fatal(err)
		}
		if err := w(&b, sampleTree(t)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two builds of the same tree differ", name)
		}
		if a.Len()%4 != 0 {
			t.Errorf("%s: length %d is not a multiple of 4", name, a.Len())
		}
	}
}

func TestXZ4(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteXZ4(&buf, sampleTree(t)); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	// Stream header: magic (6 bytes), flags 0x00 <check>; CRC32 is 0x01.
	if !bytes.HasPrefix(data, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) || data[7] != 0x01 {
		t.Fatalf("xz stream header = % x, want magic and CRC32 check", data[:8])
	}
	r, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readAll(t, raw)); got != 11 {
		t.Errorf("records in xz4 = %d, want 11", got)
	}
	// The host cpio (GNU) must unpack it, hard link included.
	if _, err := exec.LookPath("cpio"); err != nil {
		testenv.Skipf(t, "no host cpio (Debian cpio)")
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v: %s", err, out)
	}
	a, err1 := os.Stat(filepath.Join(dir, "usr/bin/tool"))
	b, err2 := os.Stat(filepath.Join(dir, "usr/sbin/tool"))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) || a.Size() == 0 {
		t.Errorf("unpacked hard link: %v %v, same=%v", err1, err2, err1 == nil && err2 == nil && os.SameFile(a, b))
	}
}

func TestTreeConflicts(t *testing.T) {
	tr := NewTree()
	if err := tr.AddData("/a", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"different content": tr.AddData("/a", []byte("y"), 0o644),
		"file as parent":    tr.AddData("/a/b", nil, 0o644),
		"hard link to dir":  tr.AddHardLink("/c", "/nope"),
		"relative":          tr.AddDir("rel", 0o755),
		"root":              tr.AddDir("/", 0o755),
	} {
		if err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
	if err := tr.AddData("/a", []byte("x"), 0o644); err != nil {
		t.Errorf("re-adding identical entry = %v, want nil", err)
	}
}

const modulesDep = `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/fs/overlayfs/overlay.ko:
`

func TestModDep(t *testing.T) {
	m, err := ParseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	m.Builtin["virtio_pci"] = true
	got, err := m.Resolve([]string{"virtio-blk", "ext4", "virtio_pci", "crc16"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/drivers/block/virtio_blk.ko.xz", "kernel/lib/crc16.ko", "kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/ext4/ext4.ko"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve() = %v, want %v", got, want)
	}
	if _, err := m.Resolve([]string{"nope"}); !errors.Is(err, ErrNoModule) {
		t.Errorf("Resolve(nope) = %v, want ErrNoModule", err)
	}
	if _, err := ParseModulesDep(strings.NewReader("/abs.ko: x\n")); err == nil {
		t.Errorf("ParseModulesDep(absolute) = nil, want error")
	}
}

func FuzzModulesDep(f *testing.F) {
	f.Add(modulesDep)
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseModulesDep(strings.NewReader(s))
		if err != nil {
			return
		}
		names := make([]string, 0, len(m.Path))
		for n := range m.Path {
			names = append(names, n)
		}
		files, err := m.Resolve(names)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, f := range files {
			if seen[f] {
				t.Fatalf("Resolve() returned %s twice", f)
			}
			seen[f] = true
		}
	})
}

// FuzzCpio builds a tree from arbitrary names and contents, writes it, and
// checks that reading it back gives exactly those files.
func FuzzCpio(f *testing.F) {
	f.Add("etc/a", []byte("hello"), "b/c/d")
	f.Add("x", []byte{}, "y")
	f.Fuzz(func(t *testing.T, n1 string, data []byte, n2 string) {
		tr := NewTree()
		if tr.AddData("/"+n1, data, 0o644) != nil || tr.AddSymlink("/"+n2, n1) != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteCPIO(&buf, tr); err != nil {
			t.Fatalf("WriteCPIO() = %v", err)
		}
		recs := readAll(t, buf.Bytes())
		if len(recs) != len(tr.Paths()) {
			t.Fatalf("read %d records, wrote %d", len(recs), len(tr.Paths()))
		}
		for _, r := range recs {
			if r.Name == filepath.Clean(n1) && r.Mode&0o170000 == modeFile {
				got := make([]byte, r.FileSize)
				if _, err := r.ReadAt(got, 0); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("content of %s = %q, want %q", r.Name, got, data)
				}
			}
		}
	})
}

// TestNeededHost walks the host's own /usr/bin/ls against "/" as sysroot:
// the same code reads foreign sysroots unpacked from .debs.
func TestNeededHost(t *testing.T) {
	if _, err := os.Stat("/usr/bin/ls"); err != nil {
		// The machine's layout (a non-merged /usr), not a missing tool.
		t.Skip("no /usr/bin/ls")
	}
	s := Sysroot{Dir: "/"}
	libs, err := s.Needed([]string{"/usr/bin/ls"})
	if err != nil {
		t.Fatal(err)
	}
	var libc, loader bool
	for _, l := range libs {
		libc = libc || strings.HasSuffix(l, "/libc.so.6")
		loader = loader || strings.Contains(l, "ld-linux")
	}
	if !libc || !loader {
		t.Errorf("Needed(ls) = %v, want libc.so.6 and the ld-linux loader", libs)
	}
	tr := NewTree()
	for _, l := range libs {
		if err := tr.AddFromSysroot(s, l); err != nil {
			t.Fatalf("AddFromSysroot(%s) = %v", l, err)
		}
	}
	if _, err := s.Needed([]string{"/etc/hostname"}); err == nil {
		t.Errorf("Needed(non-ELF) = nil error")
	}
}

func TestNeededMissing(t *testing.T) {
	if _, err := os.Stat("/usr/bin/ls"); err != nil {
		// The machine's layout (a non-merged /usr), not a missing tool.
		t.Skip("no /usr/bin/ls")
	}
	_, err := Sysroot{Dir: t.TempDir()}.Needed([]string{"/usr/bin/ls"})
	if !errors.Is(err, ErrMissingLib) {
		t.Errorf("Needed(empty sysroot) = %v, want ErrMissingLib", err)
	}
}

// TestXZCLI writes with the BCJ filter of every architecture of the
// table: the xz program must know the filter, and what it writes must be
// reproducible and read back.
func TestXZCLI(t *testing.T) {
	for _, name := range arch.Names() {
		facts, _ := arch.Lookup(name)
		arch := facts.Debian + " --" + facts.BCJ
		x := XZCLI{BCJ: facts.BCJ}
		if !x.Available() {
			testenv.Skipf(t, "xz not installed (Debian xz-utils)")
		}
		tr := NewTree()
		tr.AddDir("/usr/bin", 0o755)
		tr.AddData("/usr/bin/prog", bytes.Repeat([]byte("\xe8\x00\x01\x02\x03code"), 4096), 0o755)
		var plain, a, b bytes.Buffer
		if err := WriteCPIO(&plain, tr); err != nil {
			t.Fatal(err)
		}
		if err := x.Write(context.Background(), &a, tr); err != nil {
			t.Fatalf("XZCLI{%s}.Write = %v", arch, err)
		}
		x.Write(context.Background(), &b, tr)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("XZCLI{%s}.Write twice differs, want reproducible", arch)
		}
		if a.Len()%4 != 0 {
			t.Errorf("XZCLI{%s} length %d, want a multiple of 4", arch, a.Len())
		}
		cmd := exec.Command("xz", "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(a.Bytes())
		got, err := cmd.Output()
		if err != nil || !bytes.Equal(got, plain.Bytes()) {
			t.Errorf("xz -d of XZCLI{%s} output = %d bytes, %v; want the cpio (%d bytes)", arch, len(got), err, plain.Len())
		}
	}
}

// TestXZCLIBlocks: an archive larger than XZBlockSize is written as
// several xz blocks of one stream (compressed in parallel), the same
// bytes whatever the CPUs xz may use (taskset to one CPU).
func TestXZCLIBlocks(t *testing.T) {
	x := XZCLI{BCJ: "x86"}
	if !x.Available() {
		testenv.Skipf(t, "xz not installed (Debian xz-utils)")
	}
	tr := NewTree()
	tr.AddDir("/data", 0o755)
	// 10 MiB that compress, but not to nothing.
	data := make([]byte, 10<<20)
	for i := range data {
		data[i] = byte(i*7>>9) ^ byte(i>>13)
	}
	tr.AddData("/data/blob", data, 0o644)
	var a bytes.Buffer
	if err := x.Write(context.Background(), &a, tr); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "i.xz")
	os.WriteFile(f, a.Bytes(), 0o644)
	out, err := exec.Command("xz", "--robot", "--list", f).Output()
	if err != nil {
		t.Fatalf("xz --list: %v", err)
	}
	// "file\t<streams>\t<blocks>\t…"
	var blocks int
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, "\t"); len(f) > 2 && f[0] == "file" {
			blocks, _ = strconv.Atoi(f[2])
		}
	}
	if blocks < 3 {
		t.Errorf("xz --list: %d blocks, want 3 (10 MiB in blocks of %s):\n%s", blocks, XZBlockSize, out)
	}
	if _, err := exec.LookPath("taskset"); err == nil {
		cmd := exec.Command("taskset", append([]string{"-c", "0", "xz"}, x.Args()...)...)
		var plain bytes.Buffer
		WriteCPIO(&plain, tr)
		cmd.Stdin = &plain
		one, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz on one CPU: %v", err)
		}
		for len(one)%4 != 0 {
			one = append(one, 0)
		}
		if !bytes.Equal(one, a.Bytes()) {
			t.Errorf("xz on one CPU wrote other bytes (%d, want %d): not reproducible", len(one), a.Len())
		}
	}
}
