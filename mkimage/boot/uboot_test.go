package boot

import (
	"context"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/ubootscr"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// TestUbootPlan: the boot partition gets boot.scr (a valid script image
// of the rendered template: the revision contract, the recipe's kernel
// arguments, the architecture's boot command) and an empty pv.env; the
// plan's key follows the kernel arguments.
func TestUbootPlan(t *testing.T) {
	r, err := recipe.Parse([]byte(board), "t")
	if err != nil {
		t.Fatal(err)
	}
	d, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ubootLayout{}.Plan(Input{Recipe: r, Disk: d, Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.Make(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	boot := files.Partitions[d.Part(recipe.RoleBoot).Name]
	if len(files.Partitions) != 1 || len(boot) != 2 || len(files.Raw) != 0 {
		t.Fatalf("Make() = %d partitions, boot files %d, raw %d; want boot.scr and pv.env on the boot partition", len(files.Partitions), len(boot), len(files.Raw))
	}
	script, h, err := ubootscr.Parse(boot["/boot.scr"])
	if err != nil {
		t.Fatalf("boot.scr: %v", err)
	}
	if h.Arch != ubootscr.ArchARM64 || h.Name != ubootScriptName {
		t.Errorf("boot.scr header = %+v, want arm64 %q", h, ubootScriptName)
	}
	for _, want := range []string{
		"load ${devtype} ${devnum}:${pv_datapart} ${kernel_addr_r} /boot/uboot.txt",
		"env import -b ${kernel_addr_r} ${filesize} pv_rev pv_try",
		"env import -b ${kernel_addr_r} ${filesize} pv_trying",
		`if test "${pv_trying}" = "${pv_try}"; then`,
		"save ${devtype} ${devnum}:${pv_bootpart} ${kernel_addr_r} pv.env ${filesize}",
		"pv-initrd.img.${i}",
		"for i in 0 1 2 3 4 5 6 7; do",
		"setenv kernel_comp_size ${pv_kernel_size}",
		`setenv bootargs "rdinit=/init PV_BOOTLOADER_TYPE=uboot pv_rev=${pv_boot} pv_try=${pv_try} console=ttyAMA0,115200"`,
		"booti ${kernel_addr_r} ${ramdisk_addr_r}:${pv_initrd_size} ${pv_fdt_addr}",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("boot.scr lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(string(script), "{{") {
		t.Errorf("boot.scr has template leftovers:\n%s", script)
	}
	if env := bootenv.ParseNul(boot["/pv.env"], 0); len(env) != 0 {
		t.Errorf("pv.env = %q, want an empty env", env)
	}

	armhf := *r
	armhf.Arch = "armhf"
	q, err := ubootLayout{}.Plan(Input{Recipe: &armhf, Disk: d, Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	files, err = q.Make(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	script, _, err = ubootscr.Parse(files.Partitions[d.Part(recipe.RoleBoot).Name]["/boot.scr"])
	if err != nil || !strings.Contains(string(script), "\nbootz ") || strings.Contains(string(script), "kernel_comp") {
		t.Errorf("armhf boot.scr = %v:\n%s\nwant bootz and no kernel_comp_*", err, script)
	}

	// MIPS: bootm of the trail's uImage, without a device tree.
	mipsel := *r
	mipsel.Arch = "mipsel"
	if !LegacyKernel(&mipsel) || LegacyKernel(&armhf) {
		t.Error("LegacyKernel: want a uImage on mipsel only")
	}
	q, err = ubootLayout{}.Plan(Input{Recipe: &mipsel, Disk: d, Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	files, err = q.Make(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	script, h, err = ubootscr.Parse(files.Partitions[d.Part(recipe.RoleBoot).Name]["/boot.scr"])
	if err != nil || h.Arch != ubootscr.ArchMIPS || !strings.Contains(string(script), "\nbootm ${kernel_addr_r} ") ||
		!strings.Contains(string(script), "setenv pv_fdt 'setenv pv_fdt_addr'\n") || !strings.Contains(string(script), "pv_try=${pv_try} ${pv_rd} console=") || strings.Contains(string(script), "fdtcontroladdr") {
		t.Errorf("mipsel boot.scr = %v:\n%s\nwant bootm and no fdt", err, script)
	}

	r.Kernel.Cmdline = "console=ttyAMA1"
	q, err = ubootLayout{}.Plan(Input{Recipe: r, Disk: d, Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Key) == string(q.Key) {
		t.Error("Plan().Key did not change with kernel.cmdline")
	}
	r.Kernel.Cmdline = `console="x"`
	if _, err := (ubootLayout{}).Plan(Input{Recipe: r, Disk: d, Repo: "../.."}); err == nil {
		t.Error("Plan() took a quote in kernel.cmdline")
	}
}
