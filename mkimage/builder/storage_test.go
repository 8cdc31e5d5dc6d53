package builder

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// TestTrailReproducible builds trails/0 (BSP objects, default containers)
// twice into separate outputs and caches and compares every byte: the
// state JSON and every object; with dm-verity containers too (their hash
// devices and manifests).
func TestTrailReproducible(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
	}
	for _, verity := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "verity"}[verity], func(t *testing.T) { trailReproducible(t, verity) })
	}
}

func trailReproducible(t *testing.T, verity bool) {
	in := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bb, pvc, kern := write("busybox", "#!/bin/sh\n"), write("pvcontrol", "#!/bin/sh\n"), write("kernel", "bzImage")
	r := &recipe.Recipe{Name: "t", Arch: "amd64", Bootloader: recipe.Bootloader{Type: recipe.BootGrub},
		Containers:      []recipe.Container{{Name: "pv-mgmt", Template: "mgmt"}, {Name: "pv-network", Template: "network"}, {Name: "pvr-sdk", Template: "pvr-sdk"}},
		ContainerVerity: verity}
	sdk := write("pvr-sdk", "#!/bin/sh\n")
	build := func() string {
		out := t.TempDir()
		b := &run{o: Options{Cache: t.TempDir(), Epoch: 1700000000}, r: r, work: out, res: &Result{Sizes: map[string]int64{}}}
		bsp := &bspFiles{Objects: map[string]string{"kernel.img": kern}, JSON: map[string]any{"run.json": map[string]any{"linux": "kernel.img"}}}
		if _, err := b.makeStorage(context.Background(), &packages{Busybox: bb}, &binaries{StaticPvcontrol: pvc, StaticPvrSDK: sdk}, bsp); err != nil {
			t.Fatalf("makeStorage() = %v", err)
		}
		return filepath.Join(out, "storage")
	}
	a, b := build(), build()
	ja, err := os.ReadFile(filepath.Join(a, "trails/0/.pvr/json"))
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := os.ReadFile(filepath.Join(b, "trails/0/.pvr/json"))
	if !bytes.Equal(ja, jb) {
		t.Fatalf("trails/0 json differs:\n%s\n%s", ja, jb)
	}
	keys := []string{"pv-mgmt/run.json", "pv-network/lxc.container.conf", "pvr-sdk/root.squashfs", "bsp/kernel.img"}
	if verity {
		keys = append(keys, "pv-mgmt/_dm/root.squashfs.json", "pv-network/root.squashfs.hash", "pvr-sdk/_dm/root.squashfs.json")
	}
	for _, key := range keys {
		if !bytes.Contains(ja, []byte(`"`+key+`"`)) {
			t.Errorf("trails/0 json lacks %s: %s", key, ja)
		}
	}
	if n := bytes.Count(ja, []byte(`"root-volume":"dm:root.squashfs"`)); (n == 3) != verity {
		t.Errorf("verity=%v: %d dm: root volumes in %s", verity, n, ja)
	}
	objs, _ := os.ReadDir(filepath.Join(a, "objects"))
	if len(objs) < 5 {
		t.Errorf("objects = %d, want ≥ 5 (kernel, 2 squashfs, 2 configs)", len(objs))
	}
	for _, o := range objs {
		fa, _ := os.Open(filepath.Join(a, "objects", o.Name()))
		fb, err := os.Open(filepath.Join(b, "objects", o.Name()))
		if err != nil {
			t.Errorf("object %s only in the first build", o.Name())
			fa.Close()
			continue
		}
		da, _ := io.ReadAll(fa)
		db, _ := io.ReadAll(fb)
		fa.Close()
		fb.Close()
		if !bytes.Equal(da, db) {
			t.Errorf("object %s differs", o.Name())
		}
	}
}

// TestStorageObjectsReused builds trails/0 into the same work directory
// again after cleanWork: the objects are the ones of the first build
// (not copied again), a stray file in objects/ is removed, and a kept
// object whose content no longer matches its name is written afresh.
func TestStorageObjectsReused(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
	}
	in := t.TempDir()
	kern := filepath.Join(in, "kernel")
	writeFile(t, kern, "bzImage")
	bb, pvc := filepath.Join(in, "busybox"), filepath.Join(in, "pvcontrol")
	writeFile(t, bb, "#!/bin/sh\n")
	writeFile(t, pvc, "#!/bin/sh\n")
	r := &recipe.Recipe{Name: "t", Arch: "amd64", Bootloader: recipe.Bootloader{Type: recipe.BootGrub},
		Containers: []recipe.Container{{Name: "pv-mgmt", Template: "mgmt"}}}
	work := t.TempDir()
	b := &run{o: Options{Cache: t.TempDir(), Epoch: 1700000000}, r: r, work: work, res: &Result{Sizes: map[string]int64{}}}
	build := func() {
		t.Helper()
		if err := cleanWork(work); err != nil {
			t.Fatal(err)
		}
		bsp := &bspFiles{Objects: map[string]string{"kernel.img": kern}, JSON: map[string]any{"run.json": map[string]any{"linux": "kernel.img"}}}
		if _, err := b.makeStorage(context.Background(), &packages{Busybox: bb}, &binaries{StaticPvcontrol: pvc}, bsp); err != nil {
			t.Fatalf("makeStorage() = %v", err)
		}
	}
	build()
	objects := filepath.Join(work, "storage", "objects")
	kernSHA, err := trail.FileSHA(kern)
	if err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(objects, kernSHA)
	first, err := statFile(obj)
	if err != nil {
		t.Fatalf("kernel object: %v", err)
	}
	// kept: same file
	writeFile(t, filepath.Join(objects, "stray"), "x")
	build()
	if id, err := statFile(obj); err != nil || id.Ino != first.Ino || id.Mtime != first.Mtime {
		t.Errorf("kernel object after a rebuild = %+v, %v, want the first build's %+v", id, err, first)
	}
	if _, err := os.Stat(filepath.Join(objects, "stray")); !os.IsNotExist(err) {
		t.Errorf("stray file in objects/ after a rebuild: %v", err)
	}
	// corrupted: written afresh, and trails/0 links the good one
	writeFile(t, obj, "corrupted")
	build()
	for _, p := range []string{obj, filepath.Join(work, "storage", "trails/0/bsp/kernel.img")} {
		if got, err := trail.FileSHA(p); err != nil || got != kernSHA {
			t.Errorf("sha256(%s) after a rebuild over a corrupted object = %s, %v, want %s", p, got, err, kernSHA)
		}
	}
	// an object no longer named by the revision is removed
	writeFile(t, kern, "another kernel")
	build()
	if _, err := os.Stat(obj); !os.IsNotExist(err) {
		t.Errorf("old kernel object after the kernel changed: %v, want removed", err)
	}
}
