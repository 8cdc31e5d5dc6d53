package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/debpkg"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// packages are the unpacked Debian inputs of a build.
type packages struct {
	// Kernel is the unpacked linux-image package (nil for appengine).
	Kernel    string
	KernelVer string // uname -r
	Sysroot   string // initrd packages unpacked together
	Firmware  string // firmware packages unpacked together ("" = none)
	Addons    map[string]string
	// Busybox is the static busybox of the template containers.
	Busybox string
	// NTPRoot holds ntpPackages unpacked together (the network
	// template's sntp), "" when no network template is built.
	NTPRoot string
	// WifiRoot holds wifiPackages unpacked together (wpa_supplicant of a
	// network template with wifi), "" when none is built.
	WifiRoot string
	Src      []debpkg.Package
	// ModHeaders build modules.extra (not shipped: not in Src).
	ModHeaders *modHeaders
}

// unpacked returns the cached unpack directory of a verified .deb
// (<cache>/unpacked/<sha256>), unpacking it once.
func (b *run) unpacked(ctx context.Context, p debpkg.Package) (string, error) {
	dir := filepath.Join(b.o.Cache, "unpacked", p.SHA256)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	// Another build may unpack the same package now: each unpacks into its
	// own temporary and the first rename wins.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := debpkg.Unpack(ctx, p.Path, tmp); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(p.Name+"="+p.Version+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if fileExists(filepath.Join(dir, ".complete")) {
			return dir, nil
		}
		// an interrupted unpack of an older build
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (b *run) fetch(ctx context.Context) (*packages, string, error) {
	r := b.r
	a := &lockedArchive{b: b, lock: b.loadLock()}
	pk := &packages{Addons: map[string]string{}}
	// unpackAll merges packages into one fresh directory: each .deb is
	// unpacked once into the cache and hard-linked from there.
	unpackAll := func(dir string, names []string) error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		ps, err := a.FetchAll(ctx, names)
		if err != nil {
			return err
		}
		for _, p := range ps {
			pk.Src = append(pk.Src, p)
			src, err := b.unpacked(ctx, p)
			if err != nil {
				return err
			}
			if _, err := linkTree(src, dir, func(rel string) bool { return rel != ".complete" }); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
		}
		return nil
	}
	if r.Kernel.Package != "" {
		p, err := a.FetchImage(ctx, r.Kernel.Package, r.Kernel.Version, "linux-image-")
		if err != nil {
			return nil, "", fmt.Errorf("kernel: %w", err)
		}
		pk.Src = append(pk.Src, p)
		d, err := b.unpacked(ctx, p)
		if err != nil {
			return nil, "", err
		}
		mods, _ := filepath.Glob(filepath.Join(d, "lib/modules/*"))
		if len(mods) != 1 {
			return nil, "", fmt.Errorf("kernel package %s: want one lib/modules/<kver>, got %d", p.Name, len(mods))
		}
		pk.Kernel, pk.KernelVer = d, filepath.Base(mods[0])
		if len(r.Modules.Extra) > 0 {
			if err := b.fetchModHeaders(ctx, a, pk, p); err != nil {
				return nil, "", fmt.Errorf("modules.extra headers: %w", err)
			}
		}
	}
	pk.Sysroot = filepath.Join(b.work, "sysroot")
	if err := unpackAll(pk.Sysroot, r.Initrd.Packages); err != nil {
		return nil, "", fmt.Errorf("initrd packages: %w", err)
	}
	if len(r.Firmware.Packages) > 0 {
		pk.Firmware = filepath.Join(b.work, "firmware-root")
		if err := unpackAll(pk.Firmware, r.Firmware.Packages); err != nil {
			return nil, "", fmt.Errorf("firmware packages: %w", err)
		}
	}
	for _, name := range r.Addons {
		ad, err := recipe.LoadAddon(filepath.Join(b.o.Repo, "addons", name+".toml"))
		if err != nil {
			return nil, "", err
		}
		dir := filepath.Join(b.work, "addon-"+name)
		if err := unpackAll(dir, ad.Packages); err != nil {
			return nil, "", fmt.Errorf("addon %s: %w", name, err)
		}
		pk.Addons[name] = dir
	}
	if b.needsBusybox() {
		dir := filepath.Join(b.work, "busybox-root")
		if err := unpackAll(dir, []string{busyboxPackage}); err != nil {
			return nil, "", fmt.Errorf("containers: %w", err)
		}
		pk.Busybox = filepath.Join(dir, "bin", "busybox")
	}
	if b.needsNTP() {
		pk.NTPRoot = filepath.Join(b.work, "ntp-root")
		if err := unpackAll(pk.NTPRoot, ntpPackages); err != nil {
			return nil, "", fmt.Errorf("containers: %w", err)
		}
	}
	if b.needsWifi() {
		pk.WifiRoot = filepath.Join(b.work, "wifi-root")
		if err := unpackAll(pk.WifiRoot, wifiPackages); err != nil {
			return nil, "", fmt.Errorf("containers: %w", err)
		}
	}
	if err := a.lock.save(); err != nil {
		return nil, "", fmt.Errorf("package lock: %w", err)
	}
	var names []string
	for _, p := range pk.Src {
		names = append(names, p.Name+"="+p.Version)
	}
	how := "apt"
	if !a.apted {
		how = "pinned by " + a.lock.path
	}
	return pk, fmt.Sprintf("(%s, %d packages, %s: %s)", r.Arch, len(pk.Src), how, strings.Join(names, " ")), nil
}
