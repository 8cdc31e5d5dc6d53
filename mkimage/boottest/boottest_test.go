package boottest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/builder"
	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// image returns a scratch copy of the image named by PV_TEST_IMAGE (built
// with build.docker.sh, PV_INIT=smoke) and the storage partition offset.
// Each boot takes 40-70 s under TCG, so this runs only when asked for.
func image(t *testing.T) (string, int64) {
	t.Helper()
	src := os.Getenv("PV_TEST_IMAGE")
	r := imageRecipe(t)
	a, err := arch.Lookup(r.Arch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath(a.QEMU); err != nil {
		testenv.Skipf(t, "no %s (Debian qemu-system-*)", a.QEMU)
	}
	if u, ok := UBootFirmware[r.Arch]; ok && r.Bootloader.Type == recipe.BootUboot {
		if _, err := os.Stat(u.Bios); err != nil {
			testenv.Skipf(t, "no U-Boot firmware %s (Debian u-boot-qemu)", u.Bios)
		}
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	r.ImageSizeMiB = int(fi.Size() >> 20)
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst, l.Part(recipe.RoleStorage).Start
}

// imageRecipe is the recipe of the target PV_TEST_IMAGE was built from
// (its file name: <target>-pv-<size>MiB.img).
func imageRecipe(t *testing.T) *recipe.Recipe {
	t.Helper()
	src := os.Getenv("PV_TEST_IMAGE")
	if src == "" {
		t.Skip("set PV_TEST_IMAGE=out/x64-uefi/x64-uefi-pv-<size>MiB.img (built with PV_INIT=smoke) to boot it in qemu")
	}
	target := strings.SplitN(filepath.Base(src), "-pv-", 2)[0]
	r, err := recipe.Load(filepath.Join("../../targets", target+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// imageFlash is the flash image beside PV_TEST_IMAGE of a target whose
// U-Boot mkimage builds (bootloader.source), or "".
func imageFlash(t *testing.T) string {
	t.Helper()
	r := imageRecipe(t)
	if r.Bootloader.Source == "" {
		return ""
	}
	p := filepath.Join(filepath.Dir(os.Getenv("PV_TEST_IMAGE")), builder.FlashName(r))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the flash image of %s: %v", r.Name, err)
	}
	return p
}

// firmwares are the firmwares an image of r boots with: SeaBIOS and OVMF
// for GRUB, U-Boot for U-Boot.
func firmwares(r *recipe.Recipe) []Firmware {
	if r.Bootloader.Type == recipe.BootUboot {
		return []Firmware{UBoot}
	}
	return []Firmware{BIOS, UEFI}
}

// marker is the console line that means "booted": the smoke init's
// report by default; PV_TEST_MARKER overrides it for images whose /init is
// the Pantavisor daemon (e.g. 'rev=0 status=READY').
func marker() string {
	if m := os.Getenv("PV_TEST_MARKER"); m != "" {
		return m
	}
	return "PV-SMOKE-OK"
}

// expect lists console lines that must precede the marker:
// PV_TEST_EXPECT, ';'-separated (e.g. the containers' STARTED lines).
func expect() []string {
	var out []string
	for _, e := range strings.Split(os.Getenv("PV_TEST_EXPECT"), ";") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// boot boots img until the marker and the expected lines (PV_TEST_EXPECT
// plus more) were seen, and logs when each came.
func boot(t *testing.T, img string, fw Firmware, more ...string) Result {
	t.Helper()
	timeout := 10 * time.Minute // TCG on a loaded 2-CPU builder is slow
	if v, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = v
	}
	exp := append(expect(), more...)
	res, err := Boot(context.Background(), Options{Image: img, Arch: imageRecipe(t).Arch, Firmware: fw, Flash: imageFlash(t), Marker: marker(), Expect: exp, Fail: "PV-SMOKE-FAIL", Timeout: timeout})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 30))
	}
	t.Logf("%s: %q after %s (kernel ran /init after %s)", fw, res.MarkerLine, res.Elapsed.Round(100*time.Millisecond), res.Init.Round(100*time.Millisecond))
	for _, e := range exp {
		t.Logf("%s: %q after %s", fw, e, res.Seen[e].Round(100*time.Millisecond))
	}
	return res
}

func tail(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// TestBootBIOSAndUEFI boots a copy of the image per firmware of its boot
// loader (GRUB: SeaBIOS and OVMF, both at once, a TCG guest keeps one
// host CPU busy; U-Boot: U-Boot as the machine's firmware).
func TestBootBIOSAndUEFI(t *testing.T) {
	for _, fw := range firmwares(imageRecipe(t)) {
		t.Run(string(fw), func(t *testing.T) {
			t.Parallel()
			img, _ := image(t)
			res := boot(t, img, fw)
			if marker() == "PV-SMOKE-OK" && !strings.Contains(res.MarkerLine, "rev=0 ") {
				t.Errorf("%s: marker %q, want rev=0", fw, res.MarkerLine)
			}
		})
	}
}

// TestTryRollback drives grub.cfg's pv_try contract: the first boot with
// pv_try set boots the try revision and records pv_trying; the second
// (no commit happened) clears pv_trying and boots pv_rev again.
func TestTryRollback(t *testing.T) {
	img, off := image(t)
	if marker() != "PV-SMOKE-OK" {
		t.Skip("the rollback check reads the smoke init's report (PV_INIT=smoke)")
	}
	if err := WriteEnv(img, off, bootenv.Vars{{Key: "pv_rev", Value: "0"}, {Key: "pv_try", Value: "0"}}); err != nil {
		t.Fatal(err)
	}
	res := boot(t, img, BIOS)
	if !strings.Contains(res.MarkerLine, "try=0 trying=0 ") {
		t.Errorf("first try boot marker = %q, want try=0 trying=0", res.MarkerLine)
	}
	env, err := ReadEnv(img, off)
	if err != nil || env.Get("pv_trying") != "0" {
		t.Errorf("grubenv after try boot = %v, %v, want pv_trying=0", env, err)
	}
	res = boot(t, img, BIOS)
	if !strings.Contains(res.MarkerLine, "trying= ") {
		t.Errorf("second boot marker = %q, want pv_trying cleared (rollback)", res.MarkerLine)
	}
	if env, err := ReadEnv(img, off); err != nil || env.Get("pv_trying") != "" || env.Get("pv_rev") != "0" {
		t.Errorf("grubenv after rollback = %v, %v, want pv_trying empty, pv_rev=0", env, err)
	}
}

// TestTryMissingRevision asks the boot loader to try a revision that is
// not on the storage: its kernel does not load, so GRUB's fallback entry
// (U-Boot: boot.scr's fallback) boots the committed revision at once,
// clearing the pv_trying latch, and the daemon brings it to READY and
// ends the failed try.
func TestTryMissingRevision(t *testing.T) {
	t.Parallel()
	img, off := image(t)
	if marker() == "PV-SMOKE-OK" {
		t.Skip("needs the daemon as /init (PV_TEST_MARKER='rev=0 status=READY')")
	}
	r := imageRecipe(t)
	env := grubEnv{img, off}.vars
	lines := []string{"pantavisor: revision 9 did not load: booting revision 0"}
	if r.Bootloader.Type == recipe.BootUboot {
		env = ubootEnv(t, r, img, off)
		// U-Boot's save of pv.env (pv_trying=9, then cleared) succeeded
		lines = append(lines, "bytes written in")
	}
	set := bootenv.Vars{{Key: "pv_rev", Value: "0"}, {Key: "pv_try", Value: "9"}}
	if r.Bootloader.Type == recipe.BootUboot {
		if err := WriteUbootTxt(img, off, set); err != nil {
			t.Fatal(err)
		}
	} else if err := WriteEnv(img, off, set); err != nil {
		t.Fatal(err)
	}
	boot(t, img, firmwares(r)[0], lines...)
	// The boot loader cleared pv_trying; the daemon, booted with pv_try=9
	// on revision 0, saw the try fail and cleared pv_try.
	got, err := env()
	if err != nil || got.Get("pv_rev") != "0" || got.Get("pv_try") != "" || got.Get("pv_trying") != "" {
		t.Errorf("boot env after the fallback boot = %v, %v, want pv_rev=0, pv_try and pv_trying cleared", got, err)
	}
}

type grubEnv struct {
	img string
	off int64
}

func (g grubEnv) vars() (bootenv.Vars, error) { return ReadEnv(g.img, g.off) }

// ubootEnv reads U-Boot's side of the boot env: uboot.txt on the storage
// (pv_rev, pv_try) and pv.env on the boot partition (pv_trying).
func ubootEnv(t *testing.T, r *recipe.Recipe, img string, storage int64) func() (bootenv.Vars, error) {
	t.Helper()
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	bp := l.Part(recipe.RoleBoot)
	return func() (bootenv.Vars, error) {
		vars, err := ReadUbootTxt(img, storage)
		if err != nil {
			return nil, err
		}
		latch, err := ReadPvEnv(img, bp.Index)
		if err != nil {
			return nil, err
		}
		if v := latch.Get("pv_trying"); v != "" {
			vars.Set("pv_trying", v)
		}
		return vars, nil
	}
}
