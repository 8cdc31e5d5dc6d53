package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/pantavisor/pantavisor-go/mkimage/appengine"
	"github.com/pantavisor/pantavisor-go/mkimage/boot"
	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/imager"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// ImageName is the upstream output name <target>-pv-<size>MiB.img.
func ImageName(r *recipe.Recipe) string {
	return fmt.Sprintf("%s-pv-%dMiB.img", r.Name, r.ImageSizeMiB)
}

// makeImage writes the flashable image: the partition table, the storage
// ext4 made in place, then the boot files of the recipe's boot loader
// (mkimage/boot: its FAT partitions by name and its raw regions).
//
// Incremental: the image is a function of imageKey (the storage tree's
// digest, the boot layout's inputs, the partition layout, the tools, this
// program). A stamp beside it (.<image>.stamp) records the key and the
// image file's identity (device, inode, size, modification and change
// time) as this stage left it; when both still match, the image is not
// written again. Anything else (an input changed, the image was deleted,
// written to, replaced or touched, a build was interrupted) writes it
// afresh.
func (b *run) makeImage(ctx context.Context) (string, error) {
	r := b.r
	layout, err := boot.Lookup(r)
	if err != nil {
		return "", err
	}
	l, err := disk.Plan(r)
	if err != nil {
		return "", err
	}
	plan, err := layout.Plan(boot.Input{Recipe: r, Disk: l, Repo: b.o.Repo, Boot: filepath.Join(b.work, "boot")})
	if err != nil {
		return "", err
	}
	img := filepath.Join(b.o.Out, ImageName(r))
	tmpImg := img + ".tmp"
	seed := fmt.Sprintf("%s/%d", r.Name, b.o.Epoch)
	st := l.Part(recipe.RoleStorage)
	ext4 := disk.Ext4Options{Dir: b.res.Storage, Label: st.Label, Size: st.Size, Offset: st.Start,
		UUID: disk.GUID(seed, "storage-uuid"), HashSeed: disk.GUID(seed, "storage-hash"), Epoch: b.o.Epoch}
	key, err := imageKey(l, seed, plan, ext4)
	if err != nil {
		return "", err
	}
	fw, err := b.makeFirmware(ctx)
	if err != nil {
		return "", err
	}
	stampPath := filepath.Join(b.o.Out, "."+ImageName(r)+".stamp")
	outputs := map[string]string{"image": img}
	imagerOut := r.Bootloader.Type == recipe.BootRpiAB
	if imagerOut {
		outputs["xz"], outputs["os_list"] = img+".xz", imager.ListName(img)
	}
	b.res.Image = img
	if readStamp(stampPath).upToDate(key, outputs) {
		b.setSize("image", size(img))
		return fmt.Sprintf("(%s, %d MiB, storage %d MiB, unchanged: same inputs, image as last written%s)", filepath.Base(img), r.ImageSizeMiB, st.Size>>20, fw), nil
	}
	if err := os.Remove(stampPath); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	files, err := plan.Make(ctx)
	if err != nil {
		return "", err
	}
	if err := l.CheckRegions(files.Raw); err != nil {
		return "", err
	}
	if err := disk.Create(tmpImg, l, seed); err != nil {
		return "", err
	}
	defer os.Remove(tmpImg) // after a failure
	// The storage file system first, in place: mkfs.ext4 touches nothing
	// outside its partition, the FAT and raw regions go around it.
	if err := disk.MakeExt4(ctx, tmpImg, ext4); err != nil {
		return "", err
	}
	for _, name := range slices.Sorted(maps.Keys(files.Partitions)) {
		p := l.PartByName(name)
		if p == nil || (p.FS != "fat16" && p.FS != "fat32") {
			return "", fmt.Errorf("bootloader %s: no FAT partition named %q", r.Bootloader.Type, name)
		}
		if err := disk.WriteFAT(tmpImg, p, files.Partitions[name]); err != nil {
			return "", err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files.Images)) {
		p := l.PartByName(name)
		if p == nil || (p.FS != "fat16" && p.FS != "fat32") {
			return "", fmt.Errorf("bootloader %s: no FAT partition named %q", r.Bootloader.Type, name)
		}
		if n := size(files.Images[name]); n > p.Size {
			return "", fmt.Errorf("bootloader %s: the %d-byte image of %s does not fit its %d bytes", r.Bootloader.Type, n, name, p.Size)
		}
		if err := disk.CopyInto(tmpImg, p.Start, files.Images[name]); err != nil {
			return "", err
		}
	}
	if err := disk.WriteRegions(tmpImg, l, files.Raw); err != nil {
		return "", err
	}
	if err := os.Rename(tmpImg, img); err != nil {
		return "", err
	}
	note := ""
	if imagerOut {
		if note, err = b.imagerFiles(ctx, img); err != nil {
			return "", err
		}
	}
	if err := writeStamp(stampPath, key, outputs); err != nil {
		return "", err
	}
	b.setSize("image", size(img))
	return fmt.Sprintf("(%s, %d MiB, storage %d MiB%s)", filepath.Base(img), r.ImageSizeMiB, st.Size>>20, fw+note), nil
}

// imagerDevices are Raspberry Pi Imager's device tags the rpiab images
// are offered for: autoboot.txt (tryboot A/B) is read by the Pi 4
// bootloader EEPROM only (the Pi 5 has it too, but bookworm's kernel has
// no Pi 5 device tree).
var imagerDevices = map[string][]string{"arm64": {"pi4-64bit"}, "armhf": {"pi4-32bit"}}

// imagerFiles writes <image>.xz and its os_list JSON for Raspberry Pi
// Imager beside the image.
func (b *run) imagerFiles(ctx context.Context, img string) (string, error) {
	xz, err := imager.Compress(ctx, img)
	if err != nil {
		return "", err
	}
	e, err := imager.NewEntry("Pantavisor ("+b.r.Name+")",
		fmt.Sprintf("Pantavisor %s image, tryboot A/B (%s)", b.r.Name, b.r.Arch),
		filepath.Base(xz), img, xz, b.o.Epoch, imagerDevices[b.r.Arch])
	if err != nil {
		return "", err
	}
	if err := imager.Write(imager.ListName(img), e); err != nil {
		return "", err
	}
	b.setSize("image.xz", e.ImageDownloadSize)
	return fmt.Sprintf(", %s %d MiB, %s", filepath.Base(xz), e.ImageDownloadSize>>20, filepath.Base(imager.ListName(img))), nil
}

// imageKey is the digest of every input of the image: the layout and
// seed, the staged storage tree (disk.TreeDigest), the ext4 options,
// mkfs.ext4 and debugfs with their libraries and configuration, the boot
// layout's plan (its key, its tools and directories by identity), and
// this program itself (the FAT, GPT and region writers).
func imageKey(l disk.Layout, seed string, plan *boot.Plan, ext4 disk.Ext4Options) (string, error) {
	tree, err := disk.TreeDigest(ext4.Dir)
	if err != nil {
		return "", fmt.Errorf("storage digest: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "image v2\nmkimage %s\nlayout %#v\nseed %q\nstorage %s\n", selfID(), l, seed, tree)
	o := ext4
	o.Dir = ""
	fmt.Fprintf(h, "ext4 %#v\n", o)
	conf, _ := os.ReadFile("/etc/mke2fs.conf")
	fmt.Fprintf(h, "mke2fs.conf %x\n%s", sha256.Sum256(conf), toolsID("mkfs.ext4", "debugfs"))
	fmt.Fprintf(h, "boot %q\n%s", plan.Key, toolsID(plan.Tools...))
	for _, d := range plan.Dirs {
		fmt.Fprintf(h, "dir %s\n%s", d, dirID(d))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *run) export() (string, error) {
	out := filepath.Join(b.o.Out, b.r.Name+".pvr.tgz")
	// The export is a function of the state (objects are named by their
	// sha256) and the epoch: cache it by those.
	key := sha256.Sum256(fmt.Appendf(b.state.Canonical(), "\x00bsp/\x00%d\x00v1", b.o.Epoch))
	c := filepath.Join(b.o.Cache, "artifacts", "pvr-"+hex.EncodeToString(key[:16])+".tgz")
	cached := true
	if _, err := os.Stat(c); err != nil {
		cached = false
		if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
			return "", err
		}
		tmp := cacheTemp(c)
		f, err := os.Create(tmp)
		if err != nil {
			return "", err
		}
		if err := trailExport(f, b); err != nil {
			f.Close()
			return "", err
		}
		if err := f.Close(); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, c); err != nil {
			return "", err
		}
	}
	os.Remove(out)
	if err := os.Link(c, out); err != nil {
		if err := copyFile(c, out); err != nil {
			return "", err
		}
	}
	b.res.Pvr = out
	b.setSize("pvr.tgz", size(out))
	return fmt.Sprintf("(%s %d MiB, cached=%v)", filepath.Base(out), size(out)>>20, cached), nil
}

// appengineBundle makes the App Engine package in out/<target>
// (mkimage/appengine.Assemble: binaries, config, install script) and
// ships the factory revision as its initial pvtx package
// lib/pantavisor/pvtx.d/10-<target>.pvr.tgz (a pvr export of trails/0);
// out/<target>/<target>.pvr.tgz is the same export.
func (b *run) appengineBundle(ctx context.Context) (string, error) {
	// Assemble replaces o.Out (work/ included): export first, beside it.
	tmp := filepath.Join(filepath.Dir(b.o.Out), "."+b.r.Name+".pvr.tgz")
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if err := trail.Export(f, b.res.Storage, b.state, "", b.o.Epoch); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	err = appengine.Assemble(ctx, appengine.Options{Repo: b.o.Repo, Out: b.o.Out, Arch: b.arch.Debian, CgoEnv: b.cgoEnv, Log: b.o.Log})
	if err != nil {
		return "", err
	}
	b.res.Storage = "" // pv-appengine makes storage from pvtx.d on first run
	pvtx := filepath.Join(b.o.Out, "lib", "pantavisor", "pvtx.d", "10-"+b.r.Name+".pvr.tgz")
	if err := os.MkdirAll(filepath.Dir(pvtx), 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(b.o.Out, b.r.Name+".pvr.tgz")
	for _, dst := range []string{pvtx, out} {
		if err := copyFile(tmp, dst); err != nil {
			return "", err
		}
	}
	b.res.Pvr = out
	b.setSize("pvr.tgz", size(out))
	return fmt.Sprintf("(App Engine package %s: %s/install <prefix>)", b.o.Out, b.o.Out), nil
}
