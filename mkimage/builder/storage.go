package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/pantavisor/pantavisor-go/mkimage/grub"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

func depmodText(dir string) (*initrd.ModDep, []byte, error) { return initrd.Depmod(dir) }

// makeStorage stages the storage partition: objects/, trails/0,
// boot/<bootloader env>, config/pantahub.config.
func (b *run) makeStorage(ctx context.Context, pk *packages, bin *binaries, bsp *bspFiles) (string, error) {
	r := b.r
	root := filepath.Join(b.work, "storage")
	var rev trail.Revision
	names := make([]string, 0, len(bsp.Objects))
	for n := range bsp.Objects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := rev.AddObject("bsp/"+n, bsp.Objects[n]); err != nil {
			return "", err
		}
	}
	for n, v := range bsp.JSON {
		if err := rev.AddJSON("bsp/"+n, v); err != nil {
			return "", err
		}
	}
	if r.Vendor.StepSkel != "" {
		if err := rev.AddTree(b.repoFile(r.Vendor.StepSkel)); err != nil {
			return "", fmt.Errorf("vendor.stepskel: %w", err)
		}
	}
	ents, cnote, err := b.makeContainers(ctx, pk, bin)
	if err != nil {
		return "", err
	}
	if err := addEntries(&rev, ents); err != nil {
		return "", err
	}
	rev.Sign(b.signer()) // _sigs/ of trails/0 (sign.go)
	st, err := trail.Write(b.o.Log, root, "0", rev)
	if err != nil {
		return "", err
	}
	b.state = st
	for _, d := range []string{"boot", "config", "logs", "cache"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	switch r.Bootloader.Type {
	case recipe.BootGrub, recipe.BootNone:
		// App Engine (type none) keeps its revision state in a grubenv too
		// (its pantavisor.config says bootloader.type=grub).
		env, err := grub.Env(map[string]string{"pv_rev": "0"})
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(root, "boot", "grubenv"), env, 0o644); err != nil {
			return "", err
		}
	case recipe.BootUboot, recipe.BootUbootAB:
		if err := os.WriteFile(filepath.Join(root, "boot", "uboot.txt"), []byte("pv_rev=0\x00\x00"), 0o644); err != nil {
			return "", err
		}
	}
	if r.Config.Pantahub != "" {
		if err := copyFile(b.repoFile(r.Config.Pantahub), filepath.Join(root, "config", "pantahub.config")); err != nil {
			return "", fmt.Errorf("config.pantahub: %w", err)
		}
	}
	b.res.Storage = root
	return fmt.Sprintf("(%d state keys, %d objects; containers: %s)", len(st.Keys()), len(st.Objects()), cnote), nil
}

func trailExport(w io.Writer, b *run) error {
	return trail.Export(w, b.res.Storage, b.state, "bsp/", b.o.Epoch)
}
