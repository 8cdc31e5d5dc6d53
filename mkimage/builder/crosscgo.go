package builder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// crossCgoEnv prepares cgo for a foreign GOARCH against the target's
// Debian sysroot: a private pkg-config "lxc" whose headers are the
// host's (lxc-dev; arch-independent) and whose library is the sysroot's
// liblxc.so.1, linked with the Debian cross compiler. It returns the
// extra environment, or ok=false (with the reason) when something is
// missing: then the programs build without cgo.
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
	libdir := filepath.Join(sysroot, "usr/lib", b.arch.Multiarch)
	lib := filepath.Join(libdir, "liblxc.so.1")
	if _, err := os.Stat(lib); err != nil {
		return nil, false, "liblxc1 is not in initrd.packages"
	}
	dir := filepath.Join(b.work, "cgo-"+b.arch.GOARCH)
	for _, d := range []string{"pkgconfig", "include", "lib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, false, err.Error()
		}
	}
	links := map[string]string{
		filepath.Join(dir, "include", "lxc"):   "/usr/include/lxc",
		filepath.Join(dir, "lib", "liblxc.so"): lib,
	}
	for l, target := range links {
		os.Remove(l)
		if err := os.Symlink(target, l); err != nil {
			return nil, false, err.Error()
		}
	}
	// The paths go in CGO_CFLAGS/CGO_LDFLAGS, which are part of Go's build
	// cache key; pkg-config's output is not: with the paths in lxc.pc, a
	// build in another work directory reused a cached go-lxc that linked
	// against the first one's (since removed) cgo-<arch>/lib.
	rpath := strings.Join([]string{libdir, filepath.Join(sysroot, "lib", b.arch.Multiarch)}, ":")
	pc := "Name: lxc\nDescription: liblxc of the target sysroot\nVersion: 5\nCflags:\nLibs: -llxc\n"
	if err := os.WriteFile(filepath.Join(dir, "pkgconfig", "lxc.pc"), []byte(pc), 0o644); err != nil {
		return nil, false, err.Error()
	}
	pcdir := filepath.Join(dir, "pkgconfig")
	return []string{"CC=" + cc, "PKG_CONFIG_PATH=" + pcdir, "PKG_CONFIG_LIBDIR=" + pcdir,
		"CGO_CFLAGS=-O2 -g -I" + filepath.Join(dir, "include"),
		"CGO_LDFLAGS=-O2 -g -L" + filepath.Join(dir, "lib") + " -Wl,-rpath-link," + rpath}, true, ""
}
