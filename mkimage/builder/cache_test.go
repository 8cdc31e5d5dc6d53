package builder

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// fakeModule compiles an ELF object with a .modinfo section, which is
// all initrd.Depmod reads of a module.
func fakeModule(t *testing.T, path, depends string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "m.c")
	writeFile(t, src, `__attribute__((section(".modinfo"), used)) static const char info[] = "license=GPL\0depends=`+depends+`";`+"\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-c", "-o", path, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
}

// TestCachedDepmod: the cached modules.dep of an unpacked kernel package
// equals initrd.Depmod's, a second call does not read the modules, and a
// directory outside the unpacked packages is not cached.
func TestCachedDepmod(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		testenv.Skipf(t, "no gcc to make fake modules (Debian build-essential)")
	}
	cache := t.TempDir()
	pkg := filepath.Join(cache, "unpacked", "0123abcd")
	moddir := filepath.Join(pkg, "lib/modules/6.1.0-test")
	fakeModule(t, filepath.Join(moddir, "kernel/fs/a.ko"), "b")
	fakeModule(t, filepath.Join(moddir, "kernel/fs/b.ko"), "c")
	fakeModule(t, filepath.Join(moddir, "kernel/lib/c.ko"), "")
	writeFile(t, filepath.Join(moddir, "modules.builtin"), "kernel/fs/ext4.ko\n")
	writeFile(t, filepath.Join(pkg, ".complete"), "linux-image-test=1\n")
	wantM, wantText, err := initrd.Depmod(moddir)
	if err != nil || !bytes.Contains(wantText, []byte("kernel/fs/a.ko: kernel/fs/b.ko kernel/lib/c.ko")) {
		t.Fatalf("Depmod() = %q, %v", wantText, err)
	}
	b := &run{o: Options{Cache: cache}}
	norm := func(m *initrd.ModDep) *initrd.ModDep {
		for k, v := range m.Deps {
			if len(v) == 0 {
				delete(m.Deps, k)
			}
		}
		return m
	}
	check := func(what string) {
		t.Helper()
		m, text, err := b.cachedDepmod(moddir)
		if err != nil {
			t.Fatalf("%s: cachedDepmod() = %v", what, err)
		}
		if !bytes.Equal(text, wantText) {
			t.Errorf("%s: modules.dep = %q, want %q", what, text, wantText)
		}
		if got, want := norm(m), norm(wantM); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ModDep = %+v, want %+v", what, got, want)
		}
	}
	check("miss")
	// A hit reads no module: remove them (the cache's unpacked packages
	// never change; this only shows the modules are not read).
	if err := os.RemoveAll(filepath.Join(moddir, "kernel")); err != nil {
		t.Fatal(err)
	}
	check("hit")
	// Outside the unpacked packages: Depmod every time.
	other := t.TempDir()
	fakeModule(t, filepath.Join(other, "kernel/x.ko"), "")
	if _, text, err := b.cachedDepmod(other); err != nil || !bytes.Contains(text, []byte("kernel/x.ko:")) {
		t.Fatalf("cachedDepmod(outside the cache) = %q, %v", text, err)
	}
	os.Remove(filepath.Join(other, "kernel/x.ko"))
	fakeModule(t, filepath.Join(other, "kernel/y.ko"), "")
	if _, text, err := b.cachedDepmod(other); err != nil || !bytes.Contains(text, []byte("kernel/y.ko:")) || bytes.Contains(text, []byte("x.ko")) {
		t.Errorf("cachedDepmod(outside the cache, changed) = %q, %v, want y.ko only", text, err)
	}
}
