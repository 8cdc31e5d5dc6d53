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
	if err := disk.Create(tmpImg, l, seed); err != nil {
		return "", err
	}
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
	files := map[string][]byte{"/EFI/BOOT/grub.cfg": cfg}
	if r.Bootloader.HasFirmware("uefi") {
		p := grub.EFI
		name := "/EFI/BOOT/BOOTX64.EFI"
		if r.Arch == "arm64" {
			p, name = grub.EFIArm64, "/EFI/BOOT/BOOTAA64.EFI"
		}
		efi, err := grub.MkImage(ctx, p, early, "/EFI/BOOT")
		if err != nil {
			return "", err
		}
		files[name] = efi
	}
	if err := disk.WriteFAT(tmpImg, esp, files); err != nil {
		return "", err
	}
	if r.Bootloader.HasFirmware("bios") {
		core, err := grub.MkImage(ctx, grub.BIOS, early, "/EFI/BOOT")
		if err != nil {
			return "", err
		}
		boot, err := os.ReadFile(filepath.Join(grub.BIOS.Dir, "boot.img"))
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
	fs := filepath.Join(b.work, "storage.ext4")
	if err := disk.MakeExt4(ctx, fs, disk.Ext4Options{Dir: b.res.Storage, Label: st.Label, Size: st.Size,
		UUID: disk.GUID(seed, "storage-uuid"), HashSeed: disk.GUID(seed, "storage-hash"), Epoch: b.o.Epoch}); err != nil {
		return "", err
	}
	if err := disk.CopyInto(tmpImg, st.Start, fs); err != nil {
		return "", err
	}
	os.Remove(fs)
	if err := os.Rename(tmpImg, img); err != nil {
		return "", err
	}
	b.res.Image = img
	b.res.Sizes["image"] = size(img)
	return fmt.Sprintf("(%s, %d MiB, storage %d MiB)", filepath.Base(img), r.ImageSizeMiB, st.Size>>20), nil
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
	err = appengine.Assemble(ctx, appengine.Options{Repo: b.o.Repo, Out: b.o.Out, GOARCH: recipe.Arches[b.r.Arch], CgoEnv: b.cgoEnv, Log: b.o.Log})
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
