package boottest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
)

// piFirmware simulates the Pi firmware around the runtime's rpiab
// backend: it is the mailbox (SET_REBOOT_FLAGS arms a one-shot tryboot)
// and, on reboot, reads autoboot.txt from the bootsel partition, boots
// the [tryboot] partition when armed (the flag is then consumed) or the
// [all] one, and says so in the test root's device tree.
type piFirmware struct {
	t     *testing.T
	parts bootloader.Partitions
	root  string
	armed bool
}

func (f *piFirmware) SetTryboot(on bool) error { f.armed = on; return nil }

// reboot returns the partition the firmware boots.
func (f *piFirmware) reboot() int {
	f.t.Helper()
	ab, err := f.parts.ReadFile(1, bootenv.AutobootFile)
	if err != nil {
		f.t.Fatal(err)
	}
	boot, try, err := bootenv.ParseAutoboot(ab)
	if err != nil {
		f.t.Fatal(err)
	}
	flag := byte(0)
	if f.armed {
		boot, flag, f.armed = try, 1, false
	}
	tb := filepath.Join(f.root, bootloader.TrybootFile)
	if err := os.MkdirAll(filepath.Dir(tb), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(tb, []byte{0, 0, 0, flag}, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return boot
}

// loop attaches [off, off+size) of img to a loop device.
func loop(t *testing.T, img string, off, size int64) string {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", "--offset", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10), img).CombinedOutput()
	if err != nil {
		testenv.Skipf(t, "losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// TestRpiABSwitch drives the runtime's rpiab backend on the built
// image's partitions (loop devices): a BSP update is written onto the try
// partition from the revision's pantavisor-rpi.img.gz, listed in its
// pv_rev.txt and tryboot armed; the simulated firmware boots it and the
// update commits (autoboot.txt swapped). A second update whose try does
// not come up: the next boot is a normal one, of the old partition, and
// the runtime sees the rollback (pv_try set, not running it), which
// runtime/update ends in ERROR.
func TestRpiABSwitch(t *testing.T) {
	_, r, _ := rpiImage(t)
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root (loop devices, mount)")
	}
	for _, tool := range []string{"losetup", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "no %s", tool)
		}
	}
	img, _ := image(t)
	l := mustPlan(t, r)
	devs := map[int]string{}
	for i := 1; i <= 3; i++ {
		p := l.Parts[i-1]
		devs[i] = loop(t, img, p.Start, p.Size)
	}
	st := l.Part(recipe.RoleStorage)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", loop(t, img, st.Start, st.Size), mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount storage: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	parts := bootloader.DiskPartitions{Device: func(n int) string { return devs[n] }}
	fw := &piFirmware{t: t, parts: parts, root: t.TempDir()}
	open := func() *bootloader.Bootloader {
		t.Helper()
		bl, err := bootloader.Open(bootloader.Options{Type: "rpiab", Storage: mnt,
			RPi: &bootloader.RPiOptions{Parts: parts, Mailbox: fw, Root: fw.root}})
		if err != nil {
			t.Fatal(err)
		}
		return bl
	}
	// the factory boot: partition 2, revision 0
	if p := fw.reboot(); p != 2 {
		t.Fatalf("factory boot of partition %d, want 2", p)
	}
	bl := open()
	if bl.Rev() != "0" || bl.UpdateInProgress() {
		t.Fatalf("factory: rev %q try %q", bl.Rev(), bl.Try())
	}
	// the BSP's boot image, as revisions 1 and 2 carry it
	bspGz, err := os.ReadFile(filepath.Join(mnt, "trails/0/.pv/rpiboot.img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(bspGz))
	if err != nil {
		t.Fatal(err)
	}
	bspImg, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	trail := func(rev string) string {
		d := filepath.Join(mnt, "trails", rev)
		if err := os.MkdirAll(filepath.Join(d, ".pv"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, ".pv/rpiboot.img.gz"), bspGz, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	partBytes := func(n int) []byte {
		b, err := os.ReadFile(devs[n])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// update 1: installed on the try partition 3, tried, committed
	if force, err := bl.Install("1", trail("1")); err != nil || force {
		t.Fatalf("Install(1) = %v, %v", force, err)
	}
	if !fw.armed {
		t.Fatal("Install did not arm tryboot through the mailbox")
	}
	if l, _ := parts.ReadFile(3, bootenv.RevListFile); string(l) != "1" {
		t.Errorf("try partition pv_rev.txt = %q, want 1", l)
	}
	if k, _ := parts.ReadFile(3, "cmdline.txt"); !strings.Contains(string(k), "PV_BOOTLOADER_TYPE=rpiab") {
		t.Errorf("try partition cmdline.txt = %q: not the BSP's image", k)
	}
	// the FAT differs from the BSP image only by pv_rev.txt: same size
	if got := partBytes(3); len(got) != len(bspImg) {
		t.Errorf("try partition is %d bytes, the image %d", len(got), len(bspImg))
	}
	if p := fw.reboot(); p != 3 {
		t.Fatalf("tryboot of partition %d, want 3", p)
	}
	bl = open()
	if bl.Rev() != "1" || !bl.TryingUpdate() {
		t.Fatalf("tryboot: rev %q try %q, want running the try 1", bl.Rev(), bl.Try())
	}
	if err := bl.Env().(*bootloader.RPiAB).Validate(bl.Done(), bl.Try()); err != nil {
		t.Fatalf("Validate on the tryboot: %v", err)
	}
	if err := bl.PreCommit("1"); err != nil {
		t.Fatal(err)
	}
	if err := bl.PostCommit(); err != nil {
		t.Fatal(err)
	}
	if ab, _ := parts.ReadFile(1, bootenv.AutobootFile); string(ab) != string(bootenv.Autoboot(3, 2)) {
		t.Errorf("autoboot.txt after the commit = %q", ab)
	}
	if p := fw.reboot(); p != 3 {
		t.Fatalf("normal boot after the commit: partition %d, want 3", p)
	}
	bl = open()
	if bl.Rev() != "1" || bl.Done() != "1" || bl.UpdateInProgress() {
		t.Fatalf("after the commit: rev %q done %q try %q", bl.Rev(), bl.Done(), bl.Try())
	}

	// update 2: written to partition 2 now, tried, never comes up
	if _, err := bl.Install("2", trail("2")); err != nil {
		t.Fatal(err)
	}
	if l, _ := parts.ReadFile(2, bootenv.RevListFile); string(l) != "2" {
		t.Errorf("try partition 2 pv_rev.txt = %q, want 2", l)
	}
	if p := fw.reboot(); p != 2 {
		t.Fatalf("tryboot of partition %d, want 2", p)
	}
	// ... it hangs; the watchdog resets: tryboot was one-shot
	if p := fw.reboot(); p != 3 {
		t.Fatalf("boot after the failed try: partition %d, want the old 3", p)
	}
	bl = open()
	if bl.Rev() != "1" || bl.Try() != "2" || bl.TryingUpdate() {
		t.Fatalf("after the failed try: rev %q try %q trying %v; want running 1 with 2 pending (update.Resume: ERROR)", bl.Rev(), bl.Try(), bl.TryingUpdate())
	}
	if err := bl.Env().(*bootloader.RPiAB).Validate(bl.Done(), bl.Try()); err != nil {
		t.Errorf("Validate of the old partition: %v", err)
	}
	if err := bl.Fail(); err != nil {
		t.Fatal(err)
	}
	if ab, _ := parts.ReadFile(1, bootenv.AutobootFile); string(ab) != string(bootenv.Autoboot(3, 2)) {
		t.Errorf("autoboot.txt after the failed try = %q, want the committed one", ab)
	}
	if bl = open(); bl.UpdateInProgress() || bl.Rev() != "1" {
		t.Errorf("after Fail: rev %q try %q", bl.Rev(), bl.Try())
	}
}

func mustPlan(t *testing.T, r *recipe.Recipe) disk.Layout {
	t.Helper()
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
