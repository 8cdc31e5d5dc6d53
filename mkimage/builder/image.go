package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/pantavisor/pantavisor-go/mkimage/appengine"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/grub"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// ImageName is the upstream output name <target>-pv-<size>MiB.img.
func ImageName(r *recipe.Recipe) string {
	return fmt.Sprintf("%s-pv-%dMiB.img", r.Name, r.ImageSizeMiB)
}

// makeImage writes the flashable image: partition table, the storage
// ext4 made in place, the ESP (FAT) with GRUB, GRUB's BIOS boot code.
//
// Incremental: the image is a function of imageKey (the storage tree's
// digest, the ESP inputs, the layout, the tools, this program). A stamp
// beside it (.<image>.stamp) records the key and the image file's
// identity (device, inode, size, modification and change time) as this
// stage left it; when both still match, the image is not written again.
// Anything else (an input changed, the image was deleted, written to,
// replaced or touched, a build was interrupted) writes it afresh.
func (b *run) makeImage(ctx context.Context) (string, error) {
	r := b.r
	if r.Bootloader.Type != recipe.BootGrub {
		return "", fmt.Errorf("bootloader %s: image assembly is only implemented for grub so far", r.Bootloader.Type)
	}
	l, err := disk.Plan(r)
	if err != nil {
		return "", err
	}
	img := filepath.Join(b.o.Out, ImageName(r))
	tmpImg := img + ".tmp"
	seed := fmt.Sprintf("%s/%d", r.Name, b.o.Epoch)
	esp := l.Part(recipe.RoleESP)
	st := l.Part(recipe.RoleStorage)
	tmpl, err := os.ReadFile(b.repoFile("bootloader/grub/grub.cfg.tmpl"))
	if err != nil {
		return "", err
	}
	cfg, err := grub.Config(string(tmpl), grub.ConfigData{StorageLabel: st.Label, Timeout: r.Bootloader.Timeout, Cmdline: r.Kernel.Cmdline})
	if err != nil {
		return "", err
	}
	early := grub.EarlyConfig(esp.Label)
	var efi *grub.Platform
	efiName := "/EFI/BOOT/BOOTX64.EFI"
	if r.Bootloader.HasFirmware("uefi") {
		efi = &grub.EFI
		if r.Arch == "arm64" {
			efi, efiName = &grub.EFIArm64, "/EFI/BOOT/BOOTAA64.EFI"
		}
	}
	var bios *grub.Platform
	if r.Bootloader.HasFirmware("bios") {
		bios = &grub.BIOS
	}
	ext4 := disk.Ext4Options{Dir: b.res.Storage, Label: st.Label, Size: st.Size, Offset: st.Start,
		UUID: disk.GUID(seed, "storage-uuid"), HashSeed: disk.GUID(seed, "storage-hash"), Epoch: b.o.Epoch}
	key, err := imageKey(l, seed, cfg, early, efi, efiName, bios, ext4)
	if err != nil {
		return "", err
	}
	stampPath := filepath.Join(b.o.Out, "."+ImageName(r)+".stamp")
	outputs := map[string]string{"image": img}
	b.res.Image = img
	if readStamp(stampPath).upToDate(key, outputs) {
		b.res.Sizes["image"] = size(img)
		return fmt.Sprintf("(%s, %d MiB, storage %d MiB, unchanged: same inputs, image as last written)", filepath.Base(img), r.ImageSizeMiB, st.Size>>20), nil
	}
	if err := os.Remove(stampPath); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if err := disk.Create(tmpImg, l, seed); err != nil {
		return "", err
	}
	defer os.Remove(tmpImg) // after a failure
	// The storage file system first, in place: mkfs.ext4 touches nothing
	// outside its partition, the FAT and BIOS code go around it.
	if err := disk.MakeExt4(ctx, tmpImg, ext4); err != nil {
		return "", err
	}
	files := map[string][]byte{"/EFI/BOOT/grub.cfg": cfg}
	if efi != nil {
		data, err := grub.MkImage(ctx, *efi, early, "/EFI/BOOT")
		if err != nil {
			return "", err
		}
		files[efiName] = data
	}
	if err := disk.WriteFAT(tmpImg, esp, files); err != nil {
		return "", err
	}
	if bios != nil {
		core, err := grub.MkImage(ctx, *bios, early, "/EFI/BOOT")
		if err != nil {
			return "", err
		}
		boot, err := os.ReadFile(filepath.Join(bios.Dir, "boot.img"))
		if err != nil {
			return "", err
		}
		bb := l.Part(recipe.RoleBIOSBoot)
		f, err := os.OpenFile(tmpImg, os.O_RDWR, 0)
		if err != nil {
			return "", err
		}
		err = grub.InstallBIOS(f, f, boot, core, uint64(bb.Start/512), uint64(bb.Size/512))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmpImg, img); err != nil {
		return "", err
	}
	if err := writeStamp(stampPath, key, outputs); err != nil {
		return "", err
	}
	b.res.Sizes["image"] = size(img)
	return fmt.Sprintf("(%s, %d MiB, storage %d MiB)", filepath.Base(img), r.ImageSizeMiB, st.Size>>20), nil
}

// imageKey is the digest of every input of the image: the layout and
// seed, the staged storage tree (disk.TreeDigest), the ext4 options, the
// GRUB configurations and platforms (modules directories and
// grub-mkimage by identity), mkfs.ext4 and debugfs with their libraries
// and configuration, and this program itself (the FAT and GPT writers).
func imageKey(l disk.Layout, seed string, cfg, early []byte, efi *grub.Platform, efiName string, bios *grub.Platform, ext4 disk.Ext4Options) (string, error) {
	tree, err := disk.TreeDigest(ext4.Dir)
	if err != nil {
		return "", fmt.Errorf("storage digest: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "image v1\nmkimage %s\nlayout %#v\nseed %q\nstorage %s\n", selfID(), l, seed, tree)
	o := ext4
	o.Dir = ""
	fmt.Fprintf(h, "ext4 %#v\n", o)
	conf, _ := os.ReadFile("/etc/mke2fs.conf")
	fmt.Fprintf(h, "mke2fs.conf %x\n%s", sha256.Sum256(conf), toolsID("mkfs.ext4", "debugfs"))
	fmt.Fprintf(h, "grub.cfg %x\nearly %x\n%s", sha256.Sum256(cfg), sha256.Sum256(early), toolsID("grub-mkimage"))
	for _, p := range []*grub.Platform{efi, bios} {
		if p != nil {
			fmt.Fprintf(h, "platform %#v\n%s", *p, dirID(p.Dir))
		}
	}
	fmt.Fprintf(h, "efi name %q\n", efiName)
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
		f, err := os.Create(c + ".tmp")
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
		if err := os.Rename(c+".tmp", c); err != nil {
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
	b.res.Sizes["pvr.tgz"] = size(out)
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
	b.res.Sizes["pvr.tgz"] = size(out)
	return fmt.Sprintf("(App Engine package %s: %s/install <prefix>)", b.o.Out, b.o.Out), nil
}
