package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

func TestParseCryptPath(t *testing.T) {
	got, err := ParseCryptPath("/storage/dm-crypt-files/s/versatile.img,2,versatile_key-s")
	if err != nil || got != (CryptPath{Image: "/storage/dm-crypt-files/s/versatile.img", SizeMB: 2, Key: "versatile_key-s"}) || got.DeviceName() != "versatile" {
		t.Errorf("ParseCryptPath() = %+v (%s), %v", got, got.DeviceName(), err)
	}
	for _, bad := range []string{"", "/a.img,8", "a.img,8,k", "/a.img,0,k", "/a.img,x,k", "/a.img,8,", "/a.img,8,../k", "/a/../b.img,8,k", "/a.img,8,k,x"} {
		if _, err := ParseCryptPath(bad); !errors.Is(err, ErrBadDisk) {
			t.Errorf("ParseCryptPath(%q) error = %v, want ErrBadDisk", bad, err)
		}
	}
}

func TestProvisionOpsAndMountOptions(t *testing.T) {
	ops, err := ProvisionOps("disksize=128M comp_algorithm=lz4,mem_limit=64M")
	if err != nil || ops["disksize"] != "128M" || ops["comp_algorithm"] != "lz4" || ops["mem_limit"] != "64M" {
		t.Errorf("ProvisionOps() = %v, %v", ops, err)
	}
	if _, err := ProvisionOps("disksize"); !errors.Is(err, ErrBadDisk) {
		t.Errorf("ProvisionOps(no =) error = %v", err)
	}
	for s, ok := range map[string]bool{"16M": true, "1024": true, "2g": true, "": false, "M": false, "1MM": false, "-1": false, "1.5G": false} {
		if validSize(s) != ok {
			t.Errorf("validSize(%q) = %v, want %v", s, !ok, ok)
		}
	}
	if fl, err := MountOptions("MS_NOATIME,MS_NOSUID nodev"); err != nil || fl != 0x400|0x2|0x4 {
		t.Errorf("MountOptions() = %#x, %v", fl, err)
	}
	if _, err := MountOptions("MS_BIND"); !errors.Is(err, ErrBadDisk) {
		t.Errorf("MountOptions(MS_BIND) error = %v, want ErrBadDisk", err)
	}
}

func TestDir(t *testing.T) {
	for _, tc := range []struct {
		d    state.Disk
		want string
	}{
		{state.Disk{Name: "b", Type: "directory", Path: "/storage/disks/"}, "/storage/disks"},
		{state.Disk{Name: "c", Type: "dm-crypt-versatile", Path: "/x.img,8,k"}, "/media/pv/dmcrypt/c"},
		{state.Disk{Name: "z", Type: "volume-disk", MountTarget: "/mnt/z"}, "/mnt/z"},
		{state.Disk{Name: "s", Type: "swap-disk"}, ""},
	} {
		if got := Dir(&tc.d, "/media"); got != tc.want {
			t.Errorf("Dir(%s) = %q, want %q", tc.d.Name, got, tc.want)
		}
	}
}

func TestSwapHeader(t *testing.T) {
	h, err := SwapHeader(16<<20, 4096)
	if err != nil || len(h) != 4096 || string(h[4096-10:]) != "SWAPSPACE2" ||
		binary.NativeEndian.Uint32(h[1024:]) != 1 || binary.NativeEndian.Uint32(h[1028:]) != 4095 {
		t.Errorf("SwapHeader() = version %d last %d sig %q, %v", binary.NativeEndian.Uint32(h[1024:]), binary.NativeEndian.Uint32(h[1028:]), h[4086:], err)
	}
	if _, err := SwapHeader(4096*3, 4096); !errors.Is(err, ErrBadDisk) {
		t.Errorf("SwapHeader(tiny) error = %v", err)
	}
}

func TestCaamDcpRefused(t *testing.T) {
	s := NewSet(nil, Env{MediaDir: t.TempDir(), DevDir: t.TempDir()})
	for _, typ := range []string{"dm-crypt-caam", "dm-crypt-dcp", "dual"} {
		err := s.Mount([]state.Disk{{Name: "x", Type: typ, Path: "/s/x.img,8,k"}})
		if !errors.Is(err, ErrUnsupported) || (typ != "dual" && !strings.Contains(err.Error(), "does not have")) {
			t.Errorf("Mount(%s) error = %v, want ErrUnsupported naming the missing hardware", typ, err)
		}
	}
}

func TestDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "disks")
	s := NewSet(nil, Env{MediaDir: t.TempDir()})
	if err := s.Mount([]state.Disk{{Name: "built-in", Type: "directory", Path: dir}}); err != nil || !s.Up("built-in") {
		t.Fatalf("Mount() = %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("directory disk: %v", err)
	}
	if err := s.Mount([]state.Disk{{Name: "rel", Type: "directory", Path: "disks"}}); !errors.Is(err, ErrBadDisk) {
		t.Errorf("Mount(relative) error = %v, want ErrBadDisk", err)
	}
}

func mountedOn(target string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == target {
			return true
		}
	}
	return false
}

func needZram(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "zram devices")
	if _, err := os.Stat(zramControl); err != nil {
		testenv.Skipf(t, "skipping: no %s (kernel without zram)", zramControl)
	}
}

// TestZramVolume makes a real zram volume disk, formats and mounts it
// where the manifest says, and takes it down again.
func TestZramVolume(t *testing.T) {
	needZram(t)
	if _, err := os.Stat("/sbin/mkfs.ext4"); err != nil {
		testenv.Skipf(t, "skipping: no mkfs.ext4 (e2fsprogs)")
	}
	target := filepath.Join(t.TempDir(), "zvol")
	s := NewSet(nil, Env{MediaDir: t.TempDir()})
	d := state.Disk{Name: "zram-volume", Type: "volume-disk", Format: "ext4", Provision: "zram",
		ProvisionOps: "disksize=16M", MountTarget: target, MountOptions: "MS_NOATIME,MS_NODEV"}
	if err := s.Mount([]state.Disk{d}); err != nil {
		t.Fatalf("Mount() error = %v", err)
	}
	defer s.Close()
	if !mountedOn(target) {
		t.Fatalf("%s is not a mount point", target)
	}
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err != nil {
		t.Errorf("write on the volume: %v", err)
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, " "+target+" ") && (!strings.Contains(l, "noatime") || !strings.Contains(l, "nodev") || !strings.Contains(l, "/dev/zram")) {
			t.Errorf("mountinfo = %q, want a zram device with noatime,nodev", l)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() error = %v", err)
	}
	if mountedOn(target) {
		t.Errorf("%s still mounted after Close", target)
	}
	bad := d
	bad.ProvisionOps = "disksize=16M,bogus=1"
	if err := s.Mount([]state.Disk{bad}); !errors.Is(err, ErrBadDisk) {
		t.Errorf("Mount(bogus option) error = %v, want ErrBadDisk", err)
	}
}

// TestZramSwap makes a real zram swap disk, with our own swap header,
// and checks the kernel uses it.
func TestZramSwap(t *testing.T) {
	needZram(t)
	s := NewSet(nil, Env{MediaDir: t.TempDir()})
	if err := s.Mount([]state.Disk{{Name: "zram-swap", Type: "swap-disk", Format: "swap", Provision: "zram", ProvisionOps: "disksize=8M"}}); err != nil {
		t.Fatalf("Mount() error = %v", err)
	}
	swaps, _ := os.ReadFile("/proc/swaps")
	if !strings.Contains(string(swaps), "/dev/zram") {
		t.Errorf("/proc/swaps = %q, want a zram device", swaps)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() error = %v", err)
	}
	if after, _ := os.ReadFile("/proc/swaps"); strings.Count(string(after), "/dev/zram") >= strings.Count(string(swaps), "/dev/zram") {
		t.Errorf("/proc/swaps after Close = %q", after)
	}
}

// TestCryptVersatile opens a dm-crypt-versatile disk twice: the first time
// makes the key, the image and the file system; the second finds the file
// written the first time (what a reboot does). The image never holds the
// plain text.
func TestCryptVersatile(t *testing.T) {
	testenv.NeedRoot(t, "device-mapper")
	if misc, _ := os.ReadFile("/proc/misc"); !strings.Contains(string(misc), "device-mapper") {
		// Not an install step: the kernel lacks CONFIG_BLK_DEV_DM;
		// TestCryptInVM covers dm-crypt on Debian's kernel.
		t.Skip("skipping: this kernel has no device-mapper")
	}
	storage := t.TempDir()
	img := filepath.Join(storage, "dm-crypt-files", "secrets", "versatile.img")
	d := state.Disk{Name: "secrets", Type: "dm-crypt-versatile", Path: img + ",8,versatile_key"}
	media := t.TempDir()
	secret := []byte("the plain text of a secret file 0123456789")
	for boot := 0; boot < 2; boot++ {
		s := NewSet(nil, Env{MediaDir: media})
		if err := s.Mount([]state.Disk{d}); err != nil {
			t.Fatalf("boot %d: Mount() error = %v", boot, err)
		}
		dir := Dir(&d, media)
		if !mountedOn(dir) {
			t.Errorf("boot %d: %s not mounted", boot, dir)
		}
		f := filepath.Join(dir, "secret")
		if boot == 0 {
			if err := os.WriteFile(f, secret, 0o600); err != nil {
				t.Errorf("write: %v", err)
			}
		} else if got, err := os.ReadFile(f); err != nil || !bytes.Equal(got, secret) {
			t.Errorf("after reopening: %q, %v", got, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("boot %d: Close() error = %v", boot, err)
		}
	}
	if key, err := os.ReadFile(filepath.Join(filepath.Dir(img), "versatile_key.txt")); err != nil || len(key) != 32 {
		t.Errorf("key = %d bytes, %v, want 32", len(key), err)
	}
	if raw, _ := os.ReadFile(img); bytes.Contains(raw, secret) {
		t.Errorf("the image holds the plain text")
	}
}

func FuzzParseCryptPath(f *testing.F) {
	f.Add("/storage/dm-crypt-file/disk1/versatile.img,8,versatile_key")
	f.Add("/a.img,-1,k")
	f.Add(",,")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCryptPath(s)
		if err != nil {
			return
		}
		if c.SizeMB <= 0 || !filepath.IsAbs(c.Image) || strings.ContainsAny(c.Key, "/\x00") || c.DeviceName() == "" {
			t.Fatalf("ParseCryptPath(%q) = %+v", s, c)
		}
	})
}

func FuzzProvisionOps(f *testing.F) {
	f.Add("disksize=128M comp_algorithm=lz4")
	f.Add("a=b,,c=d=e")
	f.Add("=x")
	f.Fuzz(func(t *testing.T, s string) {
		ops, err := ProvisionOps(s)
		if err != nil {
			return
		}
		for k, v := range ops {
			if k == "" || strings.ContainsAny(k+v, ", \t") {
				t.Fatalf("ProvisionOps(%q) = %q", s, ops)
			}
		}
	})
}

func FuzzMountOptions(f *testing.F) {
	f.Add("MS_NOATIME,MS_NOSUID")
	f.Add("noatime nodev,,ro")
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := MountOptions(s)
		if err != nil {
			return
		}
		const all = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x80 | 0x400 | 0x800 | 0x200000 | 0x1000000 | 0x2000000
		if fl&^all != 0 {
			t.Fatalf("MountOptions(%q) = %#x: a flag outside the table", s, fl)
		}
	})
}
