package boottest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
)

// runtimeModules are the modules Pantavisor loads itself or makes the
// kernel ask for (runtime/disk: dm-crypt and zram disks; runtime/network:
// the nftables NAT of a container bridge, veth pairs; overlay and
// squashfs container roots; TestDrivers: dummy, nlmon).
var runtimeModules = []string{
	"dm_mod", "dm_crypt", "zram", "loop", "squashfs", "overlay",
	"bridge", "veth", "nf_tables", "nft_chain_nat", "nft_masq", "nf_nat", "dummy", "nlmon",
}

// pcModules are the drivers of the QEMU PC devices the boot tests use:
// virtio NIC, i6300esb and q35's iTCO watchdog, bochs display.
var pcModules = []string{"virtio_net", "i6300esb", "iTCO_wdt", "lpc_ich", "bochs"}

// TestImageModules: the BSP's modules.squashfs of the image, which a
// recipe's [modules] include/exclude select, holds (or the kernel has
// built in) every module in runtimeModules (and pcModules on amd64), and
// every module it holds has its dependencies with it.
func TestImageModules(t *testing.T) {
	img, off := image(t)
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Fatal("unsquashfs not installed (Debian squashfs-tools)")
	}
	sq, err := debugfsCat(img, off, "/trails/0/bsp/modules.squashfs")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "modules.squashfs")
	if err := os.WriteFile(p, sq, 0o644); err != nil {
		t.Fatal(err)
	}
	cat := func(name string) []byte {
		var stderr bytes.Buffer
		cmd := exec.Command("unsquashfs", "-cat", p, name)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("unsquashfs -cat %s: %v: %s", name, err, stderr.Bytes())
		}
		return out
	}
	dep, err := initrd.ParseModulesDep(bytes.NewReader(cat("modules.dep")))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{}
	for _, l := range strings.Fields(string(cat("modules.builtin"))) {
		builtin[initrd.ModName(l)] = true
	}
	want := runtimeModules
	if imageRecipe(t).Arch == "amd64" {
		want = append(want, pcModules...)
	}
	for _, m := range want {
		n := initrd.ModName(m)
		if _, ok := dep.Path[n]; !ok && !builtin[n] {
			t.Errorf("%s: neither in modules.squashfs nor built into the kernel", m)
		}
	}
	for name := range dep.Path {
		for _, d := range dep.Deps[name] {
			if _, ok := dep.Path[initrd.ModName(d)]; !ok {
				t.Errorf("%s needs %s, which modules.squashfs lacks", name, d)
			}
		}
	}
	t.Logf("modules.squashfs: %d modules, %d bytes", len(dep.Path), len(sq))
}
