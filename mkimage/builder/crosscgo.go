package builder

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// crossCgoEnv prepares cgo for a foreign GOARCH against the target's
// Debian sysroot: a private pkg-config "lxc" whose headers are the
// host's (lxc-dev; arch-independent) and whose library is a copy of the
// sysroot's liblxc.so.1, linked with the Debian cross compiler. It
// returns the extra environment, or ok=false (with the reason) when
// something is missing: then the programs build without cgo.
//
// The paths go in CGO_CFLAGS/CGO_LDFLAGS, which are part of Go's build
// cache key (pkg-config's output is not: a cached go-lxc then linked
// against another build's, maybe removed, directory), and they name a
// directory given by liblxc's bytes alone, the same for every work
// directory and artifact cache: the programs stay byte for byte
// reproducible. liblxc's own dependencies are not needed at link time
// (--allow-shlib-undefined); the initrd carries them.
func (b *run) crossCgoEnv(sysroot string) (env []string, ok bool, why string) {
	if b.arch.Native() {
		return nil, true, ""
	}
	cc := b.arch.CC()
	if _, err := exec.LookPath(cc); err != nil {
		return nil, false, cc + " not installed (Debian: " + b.arch.CCPackage() + ")"
	}
	if _, err := os.Stat("/usr/include/lxc/lxccontainer.h"); err != nil {
		return nil, false, "lxc headers (lxc-dev) not installed"
	}
	lib, err := os.ReadFile(filepath.Join(sysroot, "usr/lib", b.arch.Multiarch, "liblxc.so.1"))
	if err != nil {
		return nil, false, "liblxc1 is not in initrd.packages"
	}
	sum := sha256.Sum256(lib)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("pantavisor-cgo-%s-%x", b.arch.GOARCH, sum[:8]))
	if err := cgoDir(dir, lib); err != nil {
		return nil, false, err.Error()
	}
	pcdir := filepath.Join(dir, "pkgconfig")
	return []string{"CC=" + cc, "PKG_CONFIG_PATH=" + pcdir, "PKG_CONFIG_LIBDIR=" + pcdir,
		"CGO_CFLAGS=-O2 -g -I" + filepath.Join(dir, "include"),
		"CGO_LDFLAGS=-O2 -g -L" + filepath.Join(dir, "lib") + " -Wl,--allow-shlib-undefined"}, true, ""
}

// cgoDir fills dir (shared by concurrent builds: every file is complete
// before its name appears) with pkgconfig/lxc.pc, include/lxc and
// lib/liblxc.so.
func cgoDir(dir string, lib []byte) error {
	for _, d := range []string{"pkgconfig", "include", "lib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Symlink("/usr/include/lxc", filepath.Join(dir, "include", "lxc")); err != nil && !os.IsExist(err) {
		return err
	}
	pc := []byte("Name: lxc\nDescription: liblxc of the target sysroot\nVersion: 5\nCflags:\nLibs: -llxc\n")
	for name, data := range map[string][]byte{"pkgconfig/lxc.pc": pc, "lib/liblxc.so": lib} {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
			continue
		}
		f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
		if err != nil {
			return err
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Rename(f.Name(), p)
		}
		if werr != nil {
			os.Remove(f.Name())
			return werr
		}
	}
	return nil
}
