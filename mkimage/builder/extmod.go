package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/debpkg"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// Out-of-tree kernel modules (recipe modules.extra) are built against
// Debian's headers of the very kernel package the image ships:
// linux-headers-<kver> and linux-headers-<abi>-common of the target
// architecture, plus linux-kbuild-<major.minor> of the HOST architecture
// (its fixdep and modpost run on the build machine). Debian's headers
// compile with gcc-<N> (.kernelvariables), cross-built through
// DEB_HOST_GNU_TYPE, so <triplet>-gcc-<N> must be installed.

// modHeaders are the fetched build inputs of the extra modules.
type modHeaders struct {
	Target []debpkg.Package // linux-headers-<kver>, linux-headers-<abi>-common
	Kbuild debpkg.Package   // linux-kbuild-<x.y>, host architecture
}

// headerNames derives the header package names from a kernel release
// (6.1.0-50-arm64, 6.1.0-50-armmp-lpae).
func headerNames(kver string) (flavour, common, kbuild string, err error) {
	f := strings.SplitN(kver, "-", 3)
	v := strings.Split(f[0], ".")
	if len(f) != 3 || len(v) < 2 {
		return "", "", "", fmt.Errorf("kernel release %q is not <version>-<abi>-<flavour>", kver)
	}
	return "linux-headers-" + kver, "linux-headers-" + f[0] + "-" + f[1] + "-common", "linux-kbuild-" + v[0] + "." + v[1], nil
}

// fetchModHeaders fetches the headers of the kernel package (a is the
// target archive; the lock is shared with a host-architecture view).
func (b *run) fetchModHeaders(ctx context.Context, a *lockedArchive, pk *packages, image debpkg.Package) error {
	flavour, common, kbuild, err := headerNames(pk.KernelVer)
	if err != nil {
		return err
	}
	ps, err := a.FetchAll(ctx, []string{flavour, common})
	if err != nil {
		return err
	}
	host, err := arch.Host()
	if err != nil {
		return err
	}
	ha := &lockedArchive{b: b, lock: a.lock, arch: host.Debian}
	if host.Debian == b.r.Arch {
		ha = a
	}
	ks, err := ha.FetchAll(ctx, []string{kbuild})
	if err != nil {
		return fmt.Errorf("%s (%s): %w", kbuild, host.Debian, err)
	}
	for _, p := range append(ps, ks...) {
		if p.Version != image.Version {
			return fmt.Errorf("%s %s does not match %s %s: the archive's kernel and headers differ", p.Name, p.Version, image.Name, image.Version)
		}
	}
	pk.ModHeaders = &modHeaders{Target: ps, Kbuild: ks[0]}
	return nil
}

// treeID identifies a source directory by the paths and contents of its
// regular files.
func treeID(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		sum, err := trail.FileSHA(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %s\n", filepath.ToSlash(rel), sum)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// extraModules builds the recipe's out-of-tree modules, or takes them
// from the cache. It returns the directory of the stripped .ko files and
// the key they were made from ("" and "" with none).
func (b *run) extraModules(ctx context.Context, pk *packages) (dir, key string, err error) {
	extra := b.r.Modules.Extra
	if len(extra) == 0 {
		return "", "", nil
	}
	if pk.ModHeaders == nil {
		return "", "", fmt.Errorf("modules.extra: no kernel headers fetched")
	}
	gcc, err := kernelGCC(pk, b.arch)
	if err != nil {
		return "", "", err
	}
	var k strings.Builder
	fmt.Fprintf(&k, "extmod|%s|%d|%s|%s\n", pk.KernelVer, b.o.Epoch, b.arch.Debian, gcc)
	for _, p := range append(pk.ModHeaders.Target, pk.ModHeaders.Kbuild) {
		fmt.Fprintf(&k, "%s %s\n", p.Name, p.SHA256)
	}
	for _, m := range extra {
		id, err := treeID(b.repoFile(m.Src))
		if err != nil {
			return "", "", fmt.Errorf("modules.extra %s: %w", m.Src, err)
		}
		fmt.Fprintf(&k, "%s %s\n", m.Src, id)
	}
	k.WriteString(toolsID(gcc, "make", b.strip()))
	h := sha256.Sum256([]byte(k.String()))
	key = hex.EncodeToString(h[:])
	out := filepath.Join(b.o.Cache, "artifacts", key+".kmod")
	if fileExists(filepath.Join(out, ".complete")) {
		return out, key, nil
	}
	tmp := cacheTemp(out)
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	if err := b.buildExtra(ctx, pk, tmp); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(key+"\n"), 0o644); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp, out); err != nil && !fileExists(filepath.Join(out, ".complete")) {
		return "", "", err
	}
	return out, key, nil
}

// kernelGCC is the compiler Debian's headers call: <triplet>-gcc-<N>
// (gcc-<N> natively), N from the kernel's CONFIG_CC_VERSION_TEXT.
func kernelGCC(pk *packages, a arch.Arch) (string, error) {
	cfg := filepath.Join(pk.Kernel, "boot", "config-"+pk.KernelVer)
	data, err := os.ReadFile(cfg)
	if err != nil {
		return "", fmt.Errorf("modules.extra: kernel config: %w", err)
	}
	var ver string
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "CONFIG_GCC_VERSION="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 10000 {
				return "", fmt.Errorf("modules.extra: %s: CONFIG_GCC_VERSION=%s", cfg, v)
			}
			ver = strconv.Itoa(n / 10000)
		}
	}
	if ver == "" {
		return "", fmt.Errorf("modules.extra: %s: the kernel was not built with gcc", cfg)
	}
	gcc := "gcc-" + ver
	pkg := gcc
	if !a.Native() {
		gcc = a.Triplet + "-" + gcc
		pkg = "gcc-" + ver + "-" + a.Triplet
	}
	if _, err := exec.LookPath(gcc); err != nil {
		return "", fmt.Errorf("modules.extra: the kernel's compiler %s is not installed (Debian: %s)", gcc, pkg)
	}
	return gcc, nil
}

func (b *run) strip() string {
	if b.arch.Native() {
		return "strip"
	}
	return b.arch.Triplet + "-strip"
}

// buildExtra compiles every modules.extra source into out (<name>.ko,
// debug info stripped). The tree lives at one fixed place below the work
// directory and its path is mapped away (-ffile-prefix-map): the .ko
// bytes do not depend on where the build ran.
func (b *run) buildExtra(ctx context.Context, pk *packages, out string) error {
	base := filepath.Join(b.work, "kmod")
	os.RemoveAll(base)
	root := filepath.Join(base, "root")
	for _, p := range append(pk.ModHeaders.Target, pk.ModHeaders.Kbuild) {
		src, err := b.unpacked(ctx, p)
		if err != nil {
			return err
		}
		if _, err := linkTree(src, root, func(rel string) bool { return rel != ".complete" }); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	_, common, _, _ := headerNames(pk.KernelVer)
	hdr := filepath.Join(root, "usr/src/linux-headers-"+pk.KernelVer)
	// Debian's Makefile includes /usr/src/<common>/Makefile by absolute
	// path; the unpacked copy is used instead (a new file: the cache's
	// hard-linked one stays as is).
	mk := filepath.Join(hdr, "Makefile")
	os.Remove(mk)
	commonDir := filepath.Join(root, "usr/src", common)
	if err := os.WriteFile(mk, []byte("include "+filepath.Join(commonDir, "Makefile")+"\n"), 0o644); err != nil {
		return err
	}
	host, err := arch.Host()
	if err != nil {
		return err
	}
	for _, m := range b.r.Modules.Extra {
		src := filepath.Join(base, "src", filepath.Base(m.Src))
		if _, err := linkTree(b.repoFile(m.Src), src, func(string) bool { return true }); err != nil {
			return fmt.Errorf("modules.extra %s: %w", m.Src, err)
		}
		args := []string{"-C", hdr, "M=" + src, "-j1",
			"DEB_BUILD_ARCH=" + host.Debian, "DEB_HOST_ARCH=" + b.arch.Debian, "DEB_HOST_GNU_TYPE=" + b.arch.Triplet,
			"KCFLAGS=-ffile-prefix-map=" + base + "=/usr/src/pv-kmod",
			"KBUILD_BUILD_TIMESTAMP=@" + strconv.FormatInt(b.o.Epoch, 10), "KBUILD_BUILD_USER=pantavisor", "KBUILD_BUILD_HOST=mkimage",
			"modules"}
		cmd := exec.CommandContext(ctx, "make", args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C", "SOURCE_DATE_EPOCH="+strconv.FormatInt(b.o.Epoch, 10))
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("modules.extra %s: make: %w\n%s", m.Src, err, tail(log.String(), 40))
		}
		kos, _ := filepath.Glob(filepath.Join(src, "*.ko"))
		if len(kos) == 0 {
			return fmt.Errorf("modules.extra %s: no .ko built", m.Src)
		}
		sort.Strings(kos)
		for _, ko := range kos {
			dst := filepath.Join(out, filepath.Base(ko))
			if fileExists(dst) {
				return fmt.Errorf("modules.extra %s: %s built twice", m.Src, filepath.Base(ko))
			}
			if o, err := exec.CommandContext(ctx, b.strip(), "--strip-debug", "-o", dst, ko).CombinedOutput(); err != nil {
				return fmt.Errorf("modules.extra %s: strip: %w: %s", m.Src, err, o)
			}
		}
	}
	return nil
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
