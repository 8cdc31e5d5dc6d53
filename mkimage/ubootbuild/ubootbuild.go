// Package ubootbuild builds a boot loader from a Debian source package
// with our configuration: the recipe path "boot loader built from source
// with our fragments", for a machine whose Debian binary build does not
// serve (QEMU malta's) or a board Debian builds no U-Boot for.
//
// It fetches the source package (.dsc and its tarballs, verified by apt)
// through a private apt configuration with a deb-src line, unpacks it
// with dpkg-source (Debian's patches applied), applies the fragment
// directory's *.patch files, configures the defconfig merged with the
// directory's *.config fragments, and cross-compiles with Debian's gcc
// for the architecture:
//
//	p, cached, err := ubootbuild.Build(ctx, ubootbuild.Options{Cache: cache, Arch: a,
//		Source: "u-boot", Defconfig: "maltael_defconfig", Fragments: "bootloader/uboot/malta",
//		Binary: "u-boot-swap.bin", Epoch: epoch})
//
// The result is cached by content: the key is the source package's .dsc
// (which names its tarballs by SHA256), the fragments, the defconfig and
// binary names, the compiler's version and the epoch, so a rebuild with
// the same inputs runs no compiler and needs no network.
package ubootbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
)

// Options configure Build.
type Options struct {
	// Cache is the cache directory: sources under <cache>/src, built
	// binaries under <cache>/artifacts.
	Cache string
	// Arch selects the cross compiler (Arch.CC).
	Arch arch.Arch
	// Mirror and Suite are the archive of the source package.
	Mirror, Suite string
	// Offline uses the cached source indexes and files only.
	Offline bool
	// Source is the source package (u-boot), Defconfig the board's
	// configuration, Fragments the directory of *.config and *.patch,
	// Binary the build output returned.
	Source, Defconfig, Fragments, Binary string
	// Epoch is SOURCE_DATE_EPOCH (the version banner's date).
	Epoch int64
	// Jobs is make -j (default 2).
	Jobs int
	Log  *slog.Logger
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*$`)

// Build returns the path of the built binary in the cache and whether it
// was cached.
func Build(ctx context.Context, o Options) (string, bool, error) {
	if !nameRe.MatchString(o.Source) || !nameRe.MatchString(strings.TrimSuffix(o.Defconfig, "_defconfig")) ||
		!strings.HasSuffix(o.Defconfig, "_defconfig") || o.Binary == "" || strings.ContainsAny(o.Binary, "/\\") {
		return "", false, fmt.Errorf("ubootbuild: bad source %q, defconfig %q or binary %q", o.Source, o.Defconfig, o.Binary)
	}
	if o.Jobs == 0 {
		o.Jobs = 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	dsc, err := fetchSource(ctx, o)
	if err != nil {
		return "", false, err
	}
	frag, err := fragments(o.Fragments)
	if err != nil {
		return "", false, err
	}
	cc, err := exec.CommandContext(ctx, o.Arch.CC(), "--version").Output()
	if err != nil {
		return "", false, fmt.Errorf("ubootbuild: %s (Debian %s): %w", o.Arch.CC(), o.Arch.CCPackage(), err)
	}
	dscData, err := os.ReadFile(dsc)
	if err != nil {
		return "", false, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "ubootbuild v1\ndsc %x\ndefconfig %s\nbinary %s\ncc %q\nepoch %d\n", sha256.Sum256(dscData), o.Defconfig, o.Binary, cc, o.Epoch)
	for _, f := range frag {
		fmt.Fprintf(h, "%s %x\n", filepath.Base(f.path), sha256.Sum256(f.data))
	}
	key := hex.EncodeToString(h.Sum(nil))
	out := filepath.Join(o.Cache, "artifacts", key+"."+o.Binary)
	if _, err := os.Stat(out); err == nil {
		return out, true, nil
	}
	if err := build(ctx, o, dsc, frag, key, out); err != nil {
		return "", false, err
	}
	return out, false, nil
}

type fragment struct {
	path string
	data []byte
}

// fragments lists the directory's *.config and *.patch files in name
// order (configs first, as applied: patches before configuring).
func fragments(dir string) ([]fragment, error) {
	var fs []fragment
	for _, pat := range []string{"*.patch", "*.config"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		slices.Sort(m)
		for _, p := range m {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("ubootbuild: %w", err)
			}
			fs = append(fs, fragment{p, b})
		}
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("ubootbuild: %s has no *.config or *.patch", dir)
	}
	return fs, nil
}

// aptArgs point apt at <cache>/src/apt/<suite>: its own deb-src list and
// lists directory, so the host's apt state is neither read nor written.
func aptArgs(o Options) ([]string, string, error) {
	dir := filepath.Join(o.Cache, "src", "apt", o.Suite)
	if err := os.MkdirAll(filepath.Join(dir, "lists", "partial"), 0o755); err != nil {
		return nil, "", err
	}
	mirror := o.Mirror
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	src := fmt.Sprintf("deb-src %s %s main\n", mirror, o.Suite)
	list := filepath.Join(dir, "sources.list")
	if old, err := os.ReadFile(list); err != nil || !bytes.Equal(old, []byte(src)) {
		if err := os.WriteFile(list, []byte(src), 0o644); err != nil {
			return nil, "", err
		}
	}
	return []string{"-o", "Dir::Etc::SourceList=" + list, "-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"), "-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"}, dir, nil
}

// fetchSource returns the .dsc of the suite's current source package,
// downloading it and its tarballs once (apt verifies them against the
// signed Sources index; dpkg-source -x checks the tarballs against the
// .dsc again).
func fetchSource(ctx context.Context, o Options) (string, error) {
	args, dir, err := aptArgs(o)
	if err != nil {
		return "", err
	}
	lists, _ := filepath.Glob(filepath.Join(dir, "lists", "*Sources*"))
	if !o.Offline || len(lists) == 0 {
		if out, err := exec.CommandContext(ctx, "apt-get", append(args, "update")...).CombinedOutput(); err != nil && len(lists) == 0 {
			return "", fmt.Errorf("ubootbuild: apt-get update (deb-src): %w: %s", err, out)
		}
	}
	out, err := exec.CommandContext(ctx, "apt-cache", append(args, "showsrc", "--only-source", o.Source)...).Output()
	if err != nil {
		return "", fmt.Errorf("ubootbuild: apt-cache showsrc %s: %w", o.Source, err)
	}
	ver := newest(out)
	if ver == "" {
		return "", fmt.Errorf("ubootbuild: no source package %s in %s", o.Source, o.Suite)
	}
	pool := filepath.Join(o.Cache, "src", o.Source+"_"+ver)
	dsc := filepath.Join(pool, o.Source+"_"+noEpoch(ver)+".dsc")
	if _, err := os.Stat(dsc); err == nil {
		return dsc, nil
	}
	tmp := pool + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	o.Log.Info("downloading source", "package", o.Source, "version", ver)
	cmd := exec.CommandContext(ctx, "apt-get", append(args, "source", "--download-only", o.Source+"="+ver)...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ubootbuild: apt-get source %s=%s: %w: %s", o.Source, ver, err, out)
	}
	if err := os.Rename(tmp, pool); err != nil {
		return "", err
	}
	return dsc, nil
}

// newest is the highest Version of apt-cache showsrc's stanzas.
func newest(out []byte) string {
	var best string
	for _, l := range strings.Split(string(out), "\n") {
		v, ok := strings.CutPrefix(l, "Version: ")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if best == "" || exec.Command("dpkg", "--compare-versions", v, "gt", best).Run() == nil {
			best = v
		}
	}
	return best
}

func noEpoch(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[i+1:]
	}
	return v
}

// build unpacks, configures and compiles in a directory named for the key
// (the same path for the same inputs: paths the compiler records stay
// the same), and moves the binary to out.
func build(ctx context.Context, o Options, dsc string, frag []fragment, key, out string) error {
	work := filepath.Join(os.TempDir(), "pv-ubootbuild-"+key[:16])
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	o.Log.Info("building boot loader", "source", filepath.Base(dsc), "defconfig", o.Defconfig, "fragments", o.Fragments)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if err := run(ctx, o, work, "dpkg-source", "-x", dsc, src); err != nil {
		return err
	}
	var configs []string
	for _, f := range frag {
		if strings.HasSuffix(f.path, ".config") {
			configs = append(configs, f.path)
			continue
		}
		cmd := exec.CommandContext(ctx, "patch", "-p1", "--batch", "--forward", "-i", f.path)
		cmd.Dir = src
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ubootbuild: patch %s: %w: %s", filepath.Base(f.path), err, b)
		}
	}
	mk := []string{"O=out", "CROSS_COMPILE=" + o.Arch.Triplet + "-"}
	if err := run(ctx, o, src, "make", append(mk, o.Defconfig)...); err != nil {
		return err
	}
	if len(configs) > 0 {
		args := append([]string{"-m", "-O", "out", "out/.config"}, configs...)
		if err := run(ctx, o, src, "scripts/kconfig/merge_config.sh", args...); err != nil {
			return err
		}
		if err := run(ctx, o, src, "make", append(mk, "olddefconfig")...); err != nil {
			return err
		}
		if err := checkConfig(filepath.Join(src, "out/.config"), configs); err != nil {
			return err
		}
	}
	if err := run(ctx, o, src, "make", append(mk, "-j"+strconv.Itoa(o.Jobs))...); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	b, err := os.ReadFile(filepath.Join(src, "out", o.Binary))
	if err != nil {
		return fmt.Errorf("ubootbuild: the build made no %s: %w", o.Binary, err)
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// ErrConfig means a fragment asked for a setting Kconfig did not keep (a
// misspelt symbol, or one whose dependencies are off).
var ErrConfig = errors.New("fragment setting not in the final configuration")

// checkConfig checks every "CONFIG_X=v" and "# CONFIG_X is not set" line
// of the fragments made it into the configuration.
func checkConfig(config string, fragments []string) error {
	got, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(got), "\n") {
		have[l] = true
	}
	for _, f := range fragments {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			want := strings.HasPrefix(l, "CONFIG_") || (strings.HasPrefix(l, "# CONFIG_") && strings.HasSuffix(l, " is not set"))
			if want && !have[l] {
				// "not set" also holds when the symbol is absent.
				if sym, ok := strings.CutSuffix(strings.TrimPrefix(l, "# "), " is not set"); ok && !hasSymbol(got, sym) {
					continue
				}
				return fmt.Errorf("ubootbuild: %s: %w: %q", filepath.Base(f), ErrConfig, l)
			}
		}
	}
	return nil
}

func hasSymbol(config []byte, sym string) bool {
	return bytes.Contains(config, []byte("\n"+sym+"=")) || bytes.HasPrefix(config, []byte(sym+"="))
}

func run(ctx context.Context, o Options, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.Epoch, 10), "LC_ALL=C", "TZ=UTC",
		"KBUILD_BUILD_USER=pantavisor", "KBUILD_BUILD_HOST=mkimage")
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		tail := b.Bytes()
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return fmt.Errorf("ubootbuild: %s %s: %w: %s", name, strings.Join(args, " "), err, tail)
	}
	return nil
}
