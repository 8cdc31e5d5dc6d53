package grub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func cfgTemplate(t *testing.T) string {
	b, err := os.ReadFile("../../bootloader/grub/grub.cfg.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfig(t *testing.T) {
	cfg, err := Config(cfgTemplate(t), ConfigData{StorageLabel: "root", Cmdline: "console=ttyS0,115200 panic=2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"search --no-floppy --label root --set pvroot",
		"load_env -f ($pvroot)/boot/grubenv pv_rev pv_try pv_trying",
		"rdinit=/init PV_BOOTLOADER_TYPE=grub pv_rev=$boot_rev pv_try=$pv_try console=ttyS0,115200 panic=2",
		"initrd $pvtrail/pv-initrd.img $pvtrail/pv-initrd.img.0 $pvtrail/pv-initrd.img.1\n",
	} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("Config() lacks %q", want)
		}
	}
	if _, err := exec.LookPath("grub-script-check"); err == nil {
		p := filepath.Join(t.TempDir(), "grub.cfg")
		os.WriteFile(p, cfg, 0o644)
		if out, err := exec.Command("grub-script-check", p).CombinedOutput(); err != nil {
			t.Errorf("grub-script-check: %v: %s", err, out)
		}
	} else if testenv.InCI() {
		t.Errorf("grub-script-check not installed (Debian grub-common): CI=true needs every check")
	}
	for _, bad := range []ConfigData{{StorageLabel: ""}, {StorageLabel: "a b"}, {StorageLabel: "root", Cmdline: "x=$y"}} {
		if _, err := Config(cfgTemplate(t), bad); err == nil {
			t.Errorf("Config(%+v) = nil error", bad)
		}
	}
}

func TestBIOSRegions(t *testing.T) {
	img := make([]byte, 4096*512)
	img[446] = 0xee // protective MBR entry must survive
	img[440] = 0x42 // disk signature must survive
	boot := make([]byte, 512)
	for i := range boot {
		boot[i] = 0xcc
	}
	core := bytes.Repeat([]byte{0xab}, 3*512+100)
	regions, err := BIOSRegions(boot, core, 2048, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		copy(img[r.Offset:], r.Data)
	}
	if got := binary.LittleEndian.Uint64(img[kernelSectorOff:]); got != 2048 {
		t.Errorf("boot.img kernel sector = %d, want 2048", got)
	}
	if img[driveCheckOff] != 0x90 || img[446] != 0xee || img[440] != 0x42 || img[510] != 0x55 || img[511] != 0xaa {
		t.Errorf("mbr not patched as expected: % x", img[0x60:0x70])
	}
	bl := img[2048*512+blocklistOff:]
	if start, n, seg := binary.LittleEndian.Uint64(bl), binary.LittleEndian.Uint16(bl[8:]), binary.LittleEndian.Uint16(bl[10:]); start != 2049 || n != 3 || seg != 0x820 {
		t.Errorf("core blocklist = %d+%d @%#x, want 2049+3 @0x820", start, n, seg)
	}
	if _, err := BIOSRegions(boot, core, 2048, 2); !errors.Is(err, ErrCoreTooBig) {
		t.Errorf("BIOSRegions(small partition) = %v, want ErrCoreTooBig", err)
	}
}

// TestMkImage builds the real GRUB images from Debian's grub-*-bin.
func TestMkImage(t *testing.T) {
	if _, err := exec.LookPath("grub-mkimage"); err != nil {
		testenv.Skipf(t, "no grub-mkimage (Debian grub-common)")
	}
	for _, p := range []Platform{EFI, BIOS} {
		if _, err := os.Stat(p.Dir); err != nil {
			t.Logf("skip %s: %v", p.Format, err)
			continue
		}
		a, err := MkImage(context.Background(), p, EarlyConfig("PVBOOT"), "/EFI/BOOT")
		if err != nil {
			t.Fatal(err)
		}
		b, err := MkImage(context.Background(), p, EarlyConfig("PVBOOT"), "/EFI/BOOT")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: grub-mkimage output is not reproducible", p.Format)
		}
		if p.Format == "x86_64-efi" && !bytes.HasPrefix(a, []byte("MZ")) {
			t.Errorf("BOOTX64.EFI does not start with MZ")
		}
		if p.Format == "i386-pc" && len(a) > 1<<20-512 {
			t.Errorf("core.img is %d bytes, too big for a 1 MiB BIOS boot partition", len(a))
		}
	}
}
