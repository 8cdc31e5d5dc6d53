package builder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/pantavisor/pantavisor-go/mkimage/boot"
	"github.com/pantavisor/pantavisor-go/mkimage/container"
	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

func depmodText(dir string) (*initrd.ModDep, []byte, error) { return initrd.Depmod(dir) }

// makeStorage stages the storage partition: objects/, trails/0, the boot
// loader's initial state (boot/grubenv, boot/uboot.txt: mkimage/boot),
// config/pantahub.config.
func (b *run) makeStorage(ctx context.Context, pk *packages, bin *binaries, bsp *bspFiles) (string, error) {
	ents, cnote, err := b.makeContainers(ctx, pk, bin)
	if err != nil {
		return "", err
	}
	return b.writeStorage(bsp, ents, cnote)
}

// writeStorage is makeStorage with the containers made (the containers
// stage, which runs beside the initrd's).
func (b *run) writeStorage(bsp *bspFiles, ents container.Entries, cnote string) (string, error) {
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
	if err := addEntries(&rev, ents); err != nil {
		return "", err
	}
	rev.Sign(b.signer()) // _sigs/ of trails/0 (sign.go)
	st, err := writeTrail(b.o.Log, root, rev)
	if err != nil {
		return "", err
	}
	b.state = st
	for _, d := range []string{"boot", "config", "logs", "cache"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	state, err := boot.State(r)
	if err != nil {
		return "", err
	}
	for name, data := range state {
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(name)), data, 0o644); err != nil {
			return "", err
		}
	}
	if err := b.writePantahubConfig(root); err != nil { // options.go
		return "", err
	}
	b.res.Storage = root
	return fmt.Sprintf("(%d state keys, %d objects; containers: %s)", len(st.Keys()), len(st.Objects()), cnote), nil
}

// writeTrail writes trails/0 of rev into the storage tree root. The
// objects the last build left (work/storage/objects, kept by cleanWork)
// are used again instead of being copied again, but not blindly: after
// the write, objects the revision does not name are removed and every
// object's content must hash to its name (disk.FileSums, which also
// spares the image stage reading them again). An object that does not is
// removed and the revision written again, which copies it afresh.
func writeTrail(log *slog.Logger, root string, rev trail.Revision) (*state.State, error) {
	for attempt := 0; ; attempt++ {
		st, err := trail.Write(log, root, "0", rev)
		if err != nil {
			return nil, err
		}
		bad, err := checkObjects(filepath.Join(root, "objects"), st)
		if err != nil {
			return nil, err
		}
		if bad == 0 {
			return st, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("trail: %d objects do not match their names after a rewrite", bad)
		}
		if err := os.RemoveAll(filepath.Join(root, "trails")); err != nil {
			return nil, err
		}
	}
}

// checkObjects removes the entries of the objects directory st does not
// name and the objects whose content does not hash to their name, and
// returns how many of the latter there were.
func checkObjects(dir string, st *state.State) (bad int, err error) {
	want := map[string]bool{}
	for _, sha := range st.Objects() {
		want[sha] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var paths []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !want[e.Name()] || !e.Type().IsRegular() {
			if err := os.RemoveAll(p); err != nil {
				return 0, err
			}
			continue
		}
		paths = append(paths, p)
	}
	sums, err := disk.FileSums(paths)
	if err != nil {
		return 0, err
	}
	for p, sum := range sums {
		if sum != filepath.Base(p) {
			if err := os.Remove(p); err != nil {
				return 0, err
			}
			bad++
		}
	}
	return bad, nil
}

func trailExport(w io.Writer, b *run) error {
	return trail.Export(w, b.res.Storage, b.state, "bsp/", b.o.Epoch)
}
