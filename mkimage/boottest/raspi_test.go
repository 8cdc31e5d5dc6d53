package boottest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/imager"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// rpiImage is the rpiab image named by PV_TEST_IMAGE (read only) and its
// placed partitions; it skips for other images.
func rpiImage(t *testing.T) (string, *recipe.Recipe, disk.Layout) {
	t.Helper()
	r := imageRecipe(t)
	if r.Bootloader.Type != recipe.BootRpiAB {
		t.Skipf("%s is not an rpiab target", r.Name)
	}
	src := os.Getenv("PV_TEST_IMAGE")
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	return src, r, l
}

// mtools runs an mtools command on the FAT at byte offset off of img.
func mtoolsOut(t *testing.T, img string, off int64, tool string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		testenv.Skipf(t, "no %s (Debian mtools)", tool)
	}
	cmd := exec.Command(tool, append([]string{"-i", img + "@@" + strconv.FormatInt(off, 10)}, args...)...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", tool, args, err, out)
	}
	return string(out)
}

// TestRpiImage checks the rpiab image's structure: the MBR (types,
// active flag, 4 MiB alignment), the FAT labels and files, autoboot.txt,
// config.txt and cmdline.txt, boot_a and boot_b byte for byte the BSP's
// pantavisor-rpi.img.gz, the .img.xz and the os_list JSON.
func TestRpiImage(t *testing.T) {
	img, r, l := rpiImage(t)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := io.ReadFull(f, mbr); err != nil {
		t.Fatal(err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Fatal("no MBR signature")
	}
	wantTypes := []byte{0x0c, 0x0c, 0x0c, 0x83}
	for i := range 4 {
		e := mbr[446+16*i:]
		start := int64(binary.LittleEndian.Uint32(e[8:])) * 512
		size := int64(binary.LittleEndian.Uint32(e[12:])) * 512
		if e[4] != wantTypes[i] {
			t.Errorf("partition %d: type %#x, want %#x", i+1, e[4], wantTypes[i])
		}
		if active := e[0] == 0x80; active != (i == 0) {
			t.Errorf("partition %d: active %v, want only bootsel active", i+1, active)
		}
		if start%(4<<20) != 0 {
			t.Errorf("partition %d: start %d is not 4 MiB aligned", i+1, start)
		}
		if p := l.Parts[i]; p.Start != start || p.Size != size {
			t.Errorf("partition %d: [%d +%d], want [%d +%d]", i+1, start, size, p.Start, p.Size)
		}
	}
	if l.Parts[3].Role != recipe.RoleStorage || l.Parts[3].Start+l.Parts[3].Size != l.Size {
		t.Error("the storage is not the last partition, up to the end of the disk")
	}

	sel, a, b := l.PartByName("bootsel"), l.PartByName("boot_a"), l.PartByName("boot_b")
	for _, c := range []struct {
		p     *disk.Placed
		label string
	}{{sel, "BOOTSEL"}, {a, "PVBOOT"}, {b, "PVBOOT"}} {
		if out := mtoolsOut(t, img, c.p.Start, "minfo"); !strings.Contains(out, `disk label="`+c.label+" ") {
			t.Errorf("%s: label is not %s:\n%s", c.p.Name, c.label, out)
		}
	}
	files := func(p *disk.Placed) []string {
		return strings.Fields(mtoolsOut(t, img, p.Start, "mdir", "-b", "/"))
	}
	if got := files(sel); !slices.Equal(got, []string{"::/autoboot.txt", "::/bootcode.bin", "::/config.txt"}) {
		t.Errorf("bootsel files %q", got)
	}
	if got := mtoolsOut(t, img, sel.Start, "mtype", "::/autoboot.txt"); got != "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n" {
		t.Errorf("autoboot.txt = %q", got)
	}
	kernel := map[string]string{"arm64": "kernel8.img", "armhf": "kernel7l.img"}[r.Arch]
	got := files(a)
	for _, want := range []string{kernel, "pantavisor", "config.txt", "cmdline.txt", "start4.elf", "fixup4.dat", "bootcode.bin",
		"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4.dtb", RaspiMachine[r.Arch].DTB} {
		if !slices.Contains(got, "::/"+want) {
			t.Errorf("boot_a has no %s: %q", want, got)
		}
	}
	cfg := mtoolsOut(t, img, a.Start, "mtype", "::/config.txt")
	for _, want := range []string{"kernel=" + kernel + "\n", "initramfs pantavisor", " followkernel\n", "enable_uart=1\n", "dtparam=watchdog=on\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config.txt has no %q:\n%s", want, cfg)
		}
	}
	if is64 := strings.Contains(cfg, "arm_64bit=1\n"); is64 != (r.Arch == "arm64") {
		t.Errorf("config.txt arm_64bit=1 is %v on %s", is64, r.Arch)
	}
	cl := mtoolsOut(t, img, a.Start, "mtype", "::/cmdline.txt")
	for _, want := range []string{"PV_BOOTLOADER_TYPE=rpiab", "console=serial0,115200", "rdinit=/init"} {
		if !strings.Contains(cl, want) {
			t.Errorf("cmdline.txt has no %q: %q", want, cl)
		}
	}

	// boot_a, boot_b and the BSP's image: the same bytes
	read := func(p *disk.Placed) []byte {
		buf := make([]byte, p.Size)
		if _, err := f.ReadAt(buf, p.Start); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	ia, ib := read(a), read(b)
	if !bytes.Equal(ia, ib) {
		t.Error("boot_a and boot_b differ")
	}
	gz := filepath.Join(filepath.Dir(img), "work/storage/trails/0/.pv/rpiboot.img.gz")
	if g, err := os.Open(gz); err != nil {
		t.Errorf("trails/0 has no rpiboot.img.gz: %v", err)
	} else {
		zr, err := gzip.NewReader(g)
		if err != nil {
			t.Fatal(err)
		}
		bsp, err := io.ReadAll(zr)
		g.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bsp, ia) {
			t.Errorf("boot_a differs from the BSP's pantavisor-rpi.img.gz (%d and %d bytes)", len(ia), len(bsp))
		}
	}
	run, err := os.ReadFile(filepath.Join(filepath.Dir(img), "work/storage/trails/0/bsp/run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rj map[string]any
	if err := json.Unmarshal(run, &rj); err != nil {
		t.Fatal(err)
	}
	if rj["rpiab"] != "pantavisor-rpi.img.gz" || rj["linux"] != nil || rj["firmware"] != "firmware.squashfs" {
		t.Errorf("run.json = %s, want rpiab pantavisor-rpi.img.gz, firmware, no linux", run)
	}

	// .img.xz decompresses to the image; os_list describes both
	sum := func(rd io.Reader) (int64, string) {
		h := sha256.New()
		n, err := io.Copy(h, rd)
		if err != nil {
			t.Fatal(err)
		}
		return n, hex.EncodeToString(h.Sum(nil))
	}
	f.Seek(0, io.SeekStart)
	imgSize, imgSum := sum(f)
	xzPath := img + ".xz"
	xzCmd := exec.Command("xz", "-dc", xzPath)
	xzOut, err := xzCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := xzCmd.Start(); err != nil {
		t.Fatal(err)
	}
	dSize, dSum := sum(xzOut)
	if err := xzCmd.Wait(); err != nil {
		t.Fatalf("xz -d %s: %v", xzPath, err)
	}
	if dSize != imgSize || dSum != imgSum {
		t.Errorf("%s decompresses to %d bytes %s, the image is %d bytes %s", xzPath, dSize, dSum, imgSize, imgSum)
	}
	xf, err := os.Open(xzPath)
	if err != nil {
		t.Fatal(err)
	}
	xzSize, xzSum := sum(xf)
	xf.Close()
	lj, err := os.ReadFile(imager.ListName(img))
	if err != nil {
		t.Fatal(err)
	}
	var list imager.OSList
	if err := json.Unmarshal(lj, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.OSList) != 1 {
		t.Fatalf("os_list has %d entries, want 1", len(list.OSList))
	}
	e := list.OSList[0]
	if e.ExtractSize != imgSize || e.ExtractSHA256 != imgSum || e.ImageDownloadSize != xzSize || e.ImageDownloadSHA256 != xzSum {
		t.Errorf("os_list %+v does not match the image (%d %s) and the .xz (%d %s)", e, imgSize, imgSum, xzSize, xzSum)
	}
	if e.URL != filepath.Base(xzPath) || e.Name == "" || e.Description == "" || len(e.Devices) == 0 {
		t.Errorf("os_list entry %+v: want url %s, a name, description and devices", e, filepath.Base(xzPath))
	}
	if _, err := time.Parse(time.DateOnly, e.ReleaseDate); err != nil {
		t.Errorf("release_date %q: %v", e.ReleaseDate, err)
	}
}

// TestBootRaspi boots the rpiab image on QEMU's raspi3b (arm64) or
// raspi2b (armhf): the kernel, device tree and initramfs of its boot_a
// partition, the image as the SD card, until READY with the containers
// STARTED from its storage partition.
func TestBootRaspi(t *testing.T) {
	_, r, _ := rpiImage(t)
	img, _ := image(t)
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ReadRaspiBoot(img, l.PartByName("boot_a").Start, r.Arch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	timeout := 15 * time.Minute // TCG on a loaded 2-CPU builder is slow
	if v, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = v
	}
	res, err := Boot(context.Background(), Options{Image: img, Arch: r.Arch, Firmware: Raspi, Raspi: &rb,
		Marker: marker(), Expect: expect(), Fail: "PV-SMOKE-FAIL", Timeout: timeout})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
	}
	t.Logf("%s: %q after %s (kernel ran /init after %s)", RaspiMachine[r.Arch].Machine, res.MarkerLine, res.Elapsed.Round(100*time.Millisecond), res.Init.Round(100*time.Millisecond))
	for _, e := range expect() {
		t.Logf("%q after %s", e, res.Seen[e].Round(100*time.Millisecond))
	}
}

// TestRaspiArgs checks which QEMU serial port is standard input and
// output: raspi3b's console is its second (the mini UART; keys sent to the
// PL011 go to the Bluetooth serdev), raspi2b's its first (-nographic's).
func TestRaspiArgs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "sd.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	for debArch, want := range map[string]string{
		"arm64": "-serial null -serial mon:stdio",
		"armhf": "",
	} {
		a, err := arch.Lookup(debArch)
		if err != nil {
			t.Fatal(err)
		}
		args, err := raspiArgs(Options{Image: img, Raspi: &RaspiBoot{Cmdline: "x"}}, a)
		if err != nil {
			t.Fatal(err)
		}
		var serial []string
		for i, arg := range args {
			if arg == "-serial" {
				serial = append(serial, args[i:i+2]...)
			}
		}
		if got := strings.Join(serial, " "); got != want {
			t.Errorf("%s: serial options %q, want %q", debArch, got, want)
		}
		if !slices.Contains(args, "-nographic") {
			t.Errorf("%s: no -nographic in %q", debArch, args)
		}
	}
}
