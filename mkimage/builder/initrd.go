package builder

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// baseDirs are the directories Pantavisor expects in its initrd.
var baseDirs = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/storage", "/volumes", "/exports", "/writable",
	"/configs", "/etc/pantavisor", "/lib/firmware", "/lib/modules", "/usr/bin", "/var"}

// addSkel copies a vendor skeleton directory into the tree. File modes
// are what git records (0755 or 0644), not the checkout's umask: the
// initrd's bytes must not depend on how the repository was copied.
func addSkel(t *initrd.Tree, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		dst := "/" + filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return t.AddDir(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return t.AddSymlink(dst, target)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := uint32(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return t.AddFile(dst, p, mode)
		}
		return fmt.Errorf("skel %s: unsupported file type", p)
	})
}

func (b *run) repoFile(rel string) string { return filepath.Join(b.o.Repo, rel) }

func (b *run) makeInitrd(ctx context.Context, pk *packages, bin *binaries) (string, error) {
	r := b.r
	t := initrd.NewTree()
	for _, d := range baseDirs {
		if err := t.AddDir(d, 0o755); err != nil {
			return "", err
		}
	}
	t.AddDir("/tmp", 0o1777)
	// No /pv link into /run: /run is a fresh tmpfs at boot, so the link
	// would dangle and the daemon creates its run directory /pv itself.
	for _, l := range [][2]string{{"/var/run", "../run"}} {
		if err := t.AddSymlink(l[0], l[1]); err != nil {
			return "", err
		}
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	t.AddCharDev("/dev/console", 0o600, 5, 1)
	t.AddCharDev("/dev/null", 0o666, 1, 3)
	// The recipe's programs, plus the probe only when it is /init.
	names := slices.Clone(r.Initrd.Programs)
	if bin.Init == "pv-smoke-init" {
		names = append(names, bin.Init)
	}
	sort.Strings(names)
	var elfs []string
	for _, n := range names {
		if bin.Files[n] == "" {
			return "", fmt.Errorf("initrd.programs: %s did not build", n)
		}
		if err := t.AddFile("/usr/bin/"+n, bin.Files[n], 0o755); err != nil {
			return "", err
		}
		elfs = append(elfs, bin.Files[n])
	}
	for _, a := range slices.Sorted(maps.Keys(recipe.Applets)) {
		if host := recipe.Applets[a]; slices.Contains(names, host) {
			if err := t.AddSymlink("/usr/bin/"+a, host); err != nil {
				return "", err
			}
		}
	}
	// The kernel pipes cores to the path PV_SYSCTL_KERNEL_CORE_PATTERN
	// names, upstream's /lib/pv/pvcrash (an applet of pantavisor).
	if slices.Contains(names, "pantavisor") {
		if err := t.AddSymlink("/lib/pv/pvcrash", "../../usr/bin/pantavisor"); err != nil {
			return "", err
		}
	}
	if err := t.AddSymlink("/init", "usr/bin/"+bin.Init); err != nil {
		return "", err
	}
	sys := initrd.Sysroot{Dir: pk.Sysroot}
	if err := addLXCDirs(t, pk.Sysroot); err != nil {
		return "", err
	}
	for _, f := range r.Initrd.Files {
		if err := t.AddFromSysroot(sys, f); err != nil {
			return "", fmt.Errorf("initrd.files: %w", err)
		}
		real, _, _ := sys.Resolve(f)
		// data files (iconv's gconv-modules) need no libraries
		if isELF(filepath.Join(pk.Sysroot, real)) {
			elfs = append(elfs, filepath.Join(pk.Sysroot, real))
		}
	}
	libs, err := sys.Needed(elfs)
	if err != nil {
		return "", fmt.Errorf("%w (add the package to initrd.packages)", err)
	}
	for _, l := range libs {
		if err := t.AddFromSysroot(sys, l); err != nil {
			return "", err
		}
	}
	nmods := 0
	if pk.Kernel != "" {
		moddir := filepath.Join(pk.Kernel, "lib/modules", pk.KernelVer)
		dep, depText, err := b.cachedDepmod(moddir)
		if err != nil {
			return "", err
		}
		b.modDepText = depText
		files, err := dep.Resolve(r.InitrdModules())
		if err != nil {
			return "", fmt.Errorf("initrd.modules: %w", err)
		}
		base := "/lib/modules/" + pk.KernelVer
		for _, f := range files {
			if err := t.AddFile(path.Join(base, f), filepath.Join(moddir, f), 0o644); err != nil {
				return "", err
			}
		}
		nmods = len(files)
		t.AddData(base+"/modules.dep", dep.DepText(files), 0o644)
		// aliases let the modprobe applet serve the kernel's requests
		// (fs-overlay, …) before the BSP's modules.squashfs is mounted
		idx, err := initrd.IndexFiles(moddir, files)
		if err != nil {
			return "", err
		}
		for _, n := range slices.Sorted(maps.Keys(idx)) {
			t.AddData(base+"/"+n, idx[n], 0o644)
		}
		for _, extra := range []string{"modules.builtin"} {
			if _, err := os.Stat(filepath.Join(moddir, extra)); err == nil {
				t.AddFile(path.Join(base, extra), filepath.Join(moddir, extra), 0o644)
			}
		}
		// dm_verity for the dm-verity containers (recipe.InitrdModules)
		t.AddData("/etc/modules-load.d/pantavisor.conf", []byte("# kernel modules from targets/"+r.Name+".toml initrd.modules\n"+strings.Join(r.InitrdModules(), "\n")+"\n"), 0o644)
	}
	if r.Config.Pantavisor != "" {
		if err := t.AddFile("/etc/pantavisor.config", b.repoFile(r.Config.Pantavisor), 0o644); err != nil {
			return "", err
		}
	}
	if err := b.addTrust(t); err != nil { // pvs trust store (sign.go)
		return "", err
	}
	if r.Vendor.Skel != "" {
		if err := addSkel(t, b.repoFile(r.Vendor.Skel)); err != nil {
			return "", fmt.Errorf("vendor.skel: %w", err)
		}
	}
	// The central resolv.conf: containers bind it (pvr's template does
	// unless PV_RESOLV_CONF_DISABLE) and the network container writes the
	// DNS servers of its DHCP lease into it; the daemon resolves with it.
	if !t.Has("/etc/resolv.conf") {
		if err := t.AddData("/etc/resolv.conf", nil, 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(b.work, "bsp", "pantavisor")
	cached, err := b.writeArchive(ctx, "initrd", t, r.Initrd.Compression, out)
	if err != nil {
		return "", err
	}
	b.setSize("initrd", size(out))
	return fmt.Sprintf("(%d paths, %d modules, %d libs, %s %d KiB, cached=%v)", len(t.Paths()), nmods, len(libs), r.Initrd.Compression, size(out)/1024, cached), nil
}

// addLXCDirs adds what liblxc expects on the root file system when the
// sysroot has it: its rootfs mount point (LXCROOTFSMOUNT,
// /usr/lib/<triplet>/lxc/rootfs) and its state directories.
func addLXCDirs(t *initrd.Tree, sysroot string) error {
	libs, _ := filepath.Glob(filepath.Join(sysroot, "usr/lib/*/liblxc.so.1"))
	if len(libs) == 0 {
		return nil
	}
	triplet := filepath.Base(filepath.Dir(libs[0]))
	for _, d := range []string{"/usr/lib/" + triplet + "/lxc/rootfs", "/var/lib/lxc", "/var/log/lxc", "/var/cache/lxc", "/etc/lxc"} {
		if err := t.AddDir(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// addonFile is the bsp/ file name of an addon: compressed as the base
// initrd, named for its format (<name>.cpio.xz4, <name>.cpio.zst4).
func addonFile(r *recipe.Recipe, name string) string {
	f, _ := initrd.Lookup(r.Initrd.Compression) // validated
	return name + "." + f.Ext
}

// makeAddons builds every addon of the recipe as bsp/<addonFile>.
func (b *run) makeAddons(ctx context.Context, pk *packages) (string, error) {
	var notes []string
	for _, name := range b.r.Addons {
		ad, err := recipe.LoadAddon(filepath.Join(b.o.Repo, "addons", name+".toml"))
		if err != nil {
			return "", err
		}
		root := pk.Addons[name]
		t := initrd.NewTree()
		sys := initrd.Sysroot{Dir: root}
		var elfs []string
		for _, f := range ad.Files {
			real, _, err := sys.Resolve(f.From)
			if err != nil {
				return "", fmt.Errorf("addon %s: %s: %w", name, f.From, err)
			}
			if err := t.AddFile(f.To, filepath.Join(root, real), uint32(f.Mode)); err != nil {
				return "", err
			}
			elfs = append(elfs, filepath.Join(root, real))
		}
		if libs, err := sys.Needed(elfs); err != nil {
			return "", fmt.Errorf("addon %s: %w", name, err)
		} else {
			for _, l := range libs {
				if err := t.AddFromSysroot(sys, l); err != nil {
					return "", err
				}
			}
		}
		links := make([]string, 0, len(ad.Symlinks))
		for l := range ad.Symlinks {
			links = append(links, l)
		}
		sort.Strings(links)
		for _, l := range links {
			if err := t.AddSymlink(l, ad.Symlinks[l]); err != nil {
				return "", err
			}
		}
		file := addonFile(b.r, name)
		out := filepath.Join(b.work, "bsp", file)
		if _, err := b.writeArchive(ctx, "addons", t, b.r.Initrd.Compression, out); err != nil {
			return "", err
		}
		b.setSize("addon "+name, size(out))
		notes = append(notes, fmt.Sprintf("%s %d KiB", file, size(out)/1024))
	}
	return "(" + strings.Join(notes, ", ") + ")", nil
}

// isELF reports whether the file starts with the ELF magic.
func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false // AddFromSysroot reported it
	}
	defer f.Close()
	var m [4]byte
	_, err = io.ReadFull(f, m[:])
	return err == nil && string(m[:]) == "\x7fELF"
}
