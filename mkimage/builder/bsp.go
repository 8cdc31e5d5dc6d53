package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/boot"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/squashfs"
	"github.com/pantavisor/pantavisor-go/mkimage/ubootbuild"
	"github.com/pantavisor/pantavisor-go/mkimage/ubootscr"
)

// bspFiles are the bsp/ entries of the factory revision.
type bspFiles struct {
	// Objects maps a file name in bsp/ to its host path.
	Objects map[string]string
	// JSON maps a file name in bsp/ to an inline value.
	JSON map[string]any
}

// linkTree hard-links (or copies across devices) the regular files of src
// whose relative path passes keep into dst.
func linkTree(src, dst string, keep func(rel string) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == "." || !keep(rel) {
			return nil
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if old, err := os.Readlink(out); err == nil && old == t {
				return nil // the same link shipped by two packages
			}
			return os.Symlink(t, out)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n++
		os.Remove(out) // a later package wins, as with dpkg -x in order
		if err := os.Link(p, out); err == nil {
			return nil
		}
		return copyFile(p, out)
	})
	return n, err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	// through a temporary: an interrupted copy leaves no partial dst
	tmp := cacheTemp(dst)
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// matchPath reports whether rel is selected by one of patterns: a path
// prefix ("kernel/drivers/net" selects everything below it) or, with *,
// ? or [ in it, a path.Match glob of rel's first components
// ("kernel/drivers/gpu/drm/*.ko" selects the modules right in drm/, not
// those of drm/amd/; "kernel/drivers/net/ethernet/intel/e1000*" selects
// e1000/ and e1000e/).
func matchPath(rel string, patterns []string) bool {
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		if !strings.ContainsAny(p, "*?[") {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				return true
			}
			continue
		}
		n := strings.Count(p, "/") + 1
		parts := strings.SplitN(rel, "/", n+1)
		if len(parts) < n {
			continue
		}
		if ok, _ := path.Match(p, strings.Join(parts[:n], "/")); ok {
			return true
		}
	}
	return false
}

// moduleSet is the set of module files (relative to the module
// directory) that modules.include and modules.exclude select, with every
// module they depend on, wherever it is, and without the modules that
// depend on an excluded one: they could not load. nil when the recipe
// selects everything.
func moduleSet(dep *initrd.ModDep, include, exclude []string) map[string]bool {
	if len(include) == 0 && len(exclude) == 0 {
		return nil
	}
	// loads: name's file is not excluded and neither is any dependency's
	loads := map[string]bool{}
	var check func(name string) bool
	check = func(name string) bool {
		if v, seen := loads[name]; seen {
			return v
		}
		rel, ok := dep.Path[name]
		if !ok {
			return dep.Builtin[name]
		}
		loads[name] = true // a dependency loop does not exclude
		ok = !matchPath(rel, exclude)
		for _, d := range dep.Deps[name] {
			ok = check(initrd.ModName(d)) && ok
		}
		loads[name] = ok
		return ok
	}
	set := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		rel, ok := dep.Path[name]
		if !ok || set[rel] {
			return
		}
		set[rel] = true
		for _, d := range dep.Deps[name] {
			add(initrd.ModName(d))
		}
	}
	for name, rel := range dep.Path {
		if (len(include) == 0 || matchPath(rel, include)) && check(name) {
			add(name)
		}
	}
	return set
}

// bspSquashfs packs modules.squashfs and firmware.squashfs in 1 MiB
// blocks, at zstd level 12: the x64 modules take 15.3 MB against 17.3 MB
// in 128 KiB blocks at level 6, for 0.4 s more; level 19 would save 1.4
// MB more for 6 s of every cold build.
func bspSquashfs(comp string, epoch int64) squashfs.Options {
	return squashfs.Options{Comp: comp, Epoch: epoch, BlockSize: 1 << 20, Level: 12}
}

// mksquashfs makes a BSP volume with the CPUs it gets (take).
func (b *run) mksquashfs(ctx context.Context, dir, out string) error {
	n, release, err := b.take(ctx, "bsp")
	if err != nil {
		return err
	}
	defer release()
	o := bspSquashfs(b.r.Modules.Compression, b.o.Epoch)
	o.Processors = n
	return squashfs.Make(ctx, dir, out, o)
}

// cachedSquashfs makes a squashfs of dir, which stage fills, unless the
// cache already has one for key (then stage is not called); it returns
// the cached image path.
func (b *run) cachedSquashfs(ctx context.Context, key, dir string, stage func() error) (string, bool, error) {
	h := sha256.Sum256([]byte(key))
	out := filepath.Join(b.o.Cache, "artifacts", hex.EncodeToString(h[:])+".squashfs")
	if _, err := os.Stat(out); err == nil {
		return out, true, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", false, err
	}
	if err := stage(); err != nil {
		return "", false, err
	}
	tmp := cacheTemp(out)
	if err := b.mksquashfs(ctx, dir, tmp); err != nil {
		return "", false, err
	}
	if err := b.describeSquashfs(tmp, dir); err != nil {
		return "", false, err
	}
	return out, false, os.Rename(tmp, out)
}

func (b *run) makeBSP(ctx context.Context, pk *packages) (*bspFiles, string, error) {
	r := b.r
	bsp := &bspFiles{Objects: map[string]string{}, JSON: map[string]any{}}
	run := map[string]any{"addons": []string{}, "initrd": "pantavisor", "initrd_config": ""}
	bsp.Objects["pantavisor"] = filepath.Join(b.work, "bsp", "pantavisor")
	var notes []string
	if pk.Kernel != "" {
		kernel := filepath.Join(pk.Kernel, "boot", "vmlinuz-"+pk.KernelVer)
		if _, err := os.Stat(kernel); err != nil {
			return nil, "", fmt.Errorf("kernel image: %w", err)
		}
		if boot.LegacyKernel(r) {
			// U-Boot's bootm on MIPS boots a legacy uImage, not the ELF.
			a, err := ubootscr.ArchOf(r.Arch)
			if err != nil {
				return nil, "", err
			}
			uimage := filepath.Join(b.work, "bsp", "kernel.uImage")
			if err := os.MkdirAll(filepath.Dir(uimage), 0o755); err != nil {
				return nil, "", err
			}
			if err := ubootbuild.LegacyKernelFile(kernel, uimage, ubootscr.Name("Linux "+pk.KernelVer), a, b.o.Epoch); err != nil {
				return nil, "", err
			}
			kernel = uimage
		}
		bsp.Objects["kernel.img"] = kernel
		run["linux"] = "kernel.img"
		b.setSize("kernel", size(kernel))

		moddir := filepath.Join(pk.Kernel, "lib/modules", pk.KernelVer)
		extraDir, extraKey, err := b.extraModules(ctx, pk)
		if err != nil {
			return nil, "", err
		}
		// selfID: the volume's modules.dep/alias/softdep are this program's
		key := fmt.Sprintf("modules|%s|%s|%v|%v|%s|%d|%s", pk.KernelVer, kernelSHA(pk), r.Modules.Include, r.Modules.Exclude, r.Modules.Compression, b.o.Epoch, selfID()) + "|" + extraKey
		n := 0
		// The volume is staged only when the cache does not have it.
		stage := filepath.Join(b.work, "modules")
		img, hit, err := b.cachedSquashfs(ctx, key, stage, func() error {
			var err error
			dep, _, err := b.cachedDepmod(moddir)
			if err != nil {
				return err
			}
			set := moduleSet(dep, r.Modules.Include, r.Modules.Exclude)
			n, err = linkTree(moddir, stage, func(rel string) bool {
				if !strings.HasPrefix(rel, "kernel/") {
					return !strings.HasPrefix(rel, "build") && !strings.HasPrefix(rel, "source")
				}
				return set == nil || set[rel]
			})
			if err != nil {
				return fmt.Errorf("modules: %w", err)
			}
			if extraDir != "" {
				k, err := linkTree(extraDir, filepath.Join(stage, "extra"), func(rel string) bool { return strings.HasSuffix(rel, ".ko") })
				if err != nil {
					return fmt.Errorf("modules.extra: %w", err)
				}
				n += k
			}
			// modules.dep for exactly the modules in the volume.
			_, depText, err := depmodText(stage)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(stage, "modules.dep"), depText, 0o644); err != nil {
				return err
			}
			return initrd.WriteIndexFiles(stage) // modules.alias, modules.softdep
		})
		if err != nil {
			return nil, "", err
		}
		bsp.Objects["modules.squashfs"] = img
		run["modules"] = "modules.squashfs"
		b.setSize("modules.squashfs", size(img))
		if hit {
			notes = append(notes, fmt.Sprintf("kernel %s, modules.squashfs %d MiB (cached)", pk.KernelVer, size(img)>>20))
		} else {
			notes = append(notes, fmt.Sprintf("kernel %s, %d modules in modules.squashfs %d MiB", pk.KernelVer, n, size(img)>>20))
		}
	}
	if pk.Firmware != "" {
		fw := filepath.Join(pk.Firmware, "lib/firmware")
		stage := filepath.Join(b.work, "firmware")
		n, err := linkTree(fw, stage, func(rel string) bool {
			return len(r.Firmware.Include) == 0 || matchPath(rel, r.Firmware.Include)
		})
		if err != nil {
			return nil, "", fmt.Errorf("firmware: %w", err)
		}
		img := filepath.Join(b.work, "bsp", "firmware.squashfs")
		if err := b.mksquashfs(ctx, stage, img); err != nil {
			return nil, "", err
		}
		if err := b.describeSquashfs(img, stage); err != nil {
			return nil, "", err
		}
		bsp.Objects["firmware.squashfs"] = img
		run["firmware"] = "firmware.squashfs"
		b.setSize("firmware.squashfs", size(img))
		notes = append(notes, fmt.Sprintf("%d firmware files", n))
	}
	var addons []string
	for _, a := range r.Addons {
		name := addonFile(r, a)
		bsp.Objects[name] = filepath.Join(b.work, "bsp", name)
		addons = append(addons, name)
	}
	if addons != nil {
		run["addons"] = addons
	}
	if r.Bootloader.Type == recipe.BootRpiAB {
		note, err := b.makeRpiBoot(pk, bsp, run)
		if err != nil {
			return nil, "", err
		}
		notes = append(notes, note)
	}
	bsp.JSON["run.json"] = run
	var src []map[string]string
	for _, p := range pk.Src {
		src = append(src, map[string]string{"package": p.Name, "version": p.Version, "architecture": p.Arch, "sha256": p.SHA256})
	}
	bsp.JSON["src.json"] = map[string]any{"#spec": "bsp-src@1", "debian": map[string]any{"suite": r.Debian.Suite, "mirror": r.Debian.Mirror, "packages": src}}
	bsp.JSON["build.json"] = map[string]any{"target": r.Name, "arch": r.Arch, "builder": "pantavisor-go mkimage", "source_date_epoch": b.o.Epoch, "kernel": pk.KernelVer, "init": b.o.Init}
	return bsp, "(" + strings.Join(notes, "; ") + ")", nil
}

func kernelSHA(pk *packages) string {
	for _, p := range pk.Src {
		if strings.HasPrefix(p.Name, "linux-image-") {
			return p.SHA256
		}
	}
	return ""
}
