package volume

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/dmverity"
)

// verityDir makes dir/<file> (a copy of img) and its hash device, and
// returns the manifest pvr dm-convert would write.
func verityDir(t *testing.T, dir, file string, img []byte) []byte {
	t.Helper()
	data := filepath.Join(dir, file)
	if err := os.WriteFile(data, img, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := dmverity.Format(data, data+".hash", nil)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"type":"dm-verity","data_device":"` + file + `","hash_device":"` + file + `.hash","root_hash":"` + hex.EncodeToString(root) + `"}`)
}

func TestDMName(t *testing.T) {
	a := DMName("5", "app", "root.squashfs")
	for _, other := range []string{DMName("6", "app", "root.squashfs"), DMName("5", "app2", "root.squashfs"), DMName("5", "app", "data.squashfs"), DMName("5", "ap", "p-root.squashfs")} {
		if other == a {
			t.Errorf("DMName collision: %q", a)
		}
	}
	for _, n := range []string{a, DMName("locals/x y", "a/../b", strings.Repeat("ü/", 200))} {
		if len(n) >= 128 || strings.ContainsAny(n, "/ \x00") || !strings.HasPrefix(n, "pv-") {
			t.Errorf("DMName = %q: not a safe device-mapper name", n)
		}
	}
}

// TestVerityRefused: what does not fit together is refused before any
// device is made, and nothing stays behind.
func TestVerityRefused(t *testing.T) {
	dir := t.TempDir()
	img := append([]byte("hsqs"), make([]byte, 8*dmverity.BlockSize-4)...)
	good := verityDir(t, dir, "root.squashfs", img)
	if _, err := dmverity.ParseManifest(good); err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
	os.WriteFile(filepath.Join(dir, "short.squashfs"), img[:4096], 0o644)
	os.WriteFile(filepath.Join(dir, "short.squashfs.hash"), mustRead(t, filepath.Join(dir, "root.squashfs.hash")), 0o644)
	os.WriteFile(filepath.Join(dir, "nosb.hash"), make([]byte, 8192), 0o644)
	for _, tc := range []struct {
		name, file string
		manifest   []byte
		is         error
	}{
		{"type", "root.squashfs", edit("dm-verity", "dm-crypt"), dmverity.ErrFormat},
		{"escaping hash device", "root.squashfs", edit(`"root.squashfs.hash"`, `"../root.squashfs.hash"`), dmverity.ErrFormat},
		{"other data device", "root.squashfs", edit(`"data_device":"root.squashfs"`, `"data_device":"x.squashfs"`), ErrVerity},
		{"not JSON", "root.squashfs", good[:20], dmverity.ErrFormat},
		{"no superblock", "root.squashfs", edit(`"root.squashfs.hash"`, `"nosb.hash"`), dmverity.ErrFormat},
		{"data shorter than the tree", "short.squashfs", bytes.ReplaceAll(good, []byte(`"root.squashfs`), []byte(`"short.squashfs`)), ErrVerity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet(testLog(t))
			err := s.Verity(dir, tc.file, tc.manifest, DMName("1", "app", tc.file), filepath.Join(dir, "mnt"))
			if !errors.Is(err, tc.is) {
				t.Errorf("Verity() error = %v, want %v", err, tc.is)
			}
			if len(s.entries) != 0 {
				t.Errorf("entries after failure = %v", s.entries)
			}
		})
	}
	// A 64-byte root for a sha256 tree.
	long := edit(`"root_hash":"`, `"root_hash":"`+strings.Repeat("00", 32))
	s := NewSet(testLog(t))
	if err := s.Verity(dir, "root.squashfs", long, "x", filepath.Join(dir, "mnt")); !errors.Is(err, ErrVerity) {
		t.Errorf("Verity(sha512-sized root) error = %v, want ErrVerity", err)
	}
	// Through MountPlatform: the manifest must be in the state, and "dm"
	// is the only handler.
	l := Layout{VolumesDir: filepath.Join(dir, "volumes"), DisksDir: filepath.Join(dir, "disks"), ConfigsDir: filepath.Join(dir, "configs")}
	for vol, is := range map[string]error{"dm:root.squashfs": ErrVerity, "xy:root.squashfs": ErrUnsupported, "dm:../root.squashfs": ErrBadName} {
		_, err := MountPlatform(testLog(t), l, Platform{Name: "app", Rev: "1", Dir: dir, Volumes: []string{vol}})
		if !errors.Is(err, is) {
			t.Errorf("MountPlatform(%s) error = %v, want %v", vol, err, is)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// needDM skips unless the kernel has device-mapper (not an install step:
// the host kernel may lack it; runtime/disk's TestCryptInVM runs TestVerity
// on Debian's kernel).
func needDM(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "device-mapper")
	if _, err := os.Stat(filepath.Join(devDir, "mapper/control")); err != nil {
		if misc, _ := os.ReadFile("/proc/misc"); !strings.Contains(string(misc), "device-mapper") {
			t.Skip("skipping: this kernel has no device-mapper")
		}
	}
}

// verityImage is the squashfs the dm tests use: PV_TEST_SQUASHFS (the VM
// of runtime/disk has no mksquashfs), else the test rootfs.
func verityImage(t *testing.T) []byte {
	t.Helper()
	p := os.Getenv("PV_TEST_SQUASHFS")
	if p == "" {
		p = fixture(t)
	}
	return mustRead(t, p)
}

// dmDevices returns the names of the device-mapper devices there are.
func dmDevices() []string {
	var out []string
	names, _ := filepath.Glob("/sys/block/dm-*/dm/name")
	for _, n := range names {
		b, _ := os.ReadFile(n)
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

// TestVerity mounts a "dm:" root volume through a real dm-verity device
// and reads it; a wrong root hash fails the mount, a flipped byte in the
// data file fails the mount or the reads with EIO; nothing (mount,
// device-mapper device, loop device) outlives Unmount.
func TestVerity(t *testing.T) {
	needDM(t)
	img := verityImage(t)
	dir := t.TempDir()
	plat := filepath.Join(dir, "trail", "app")
	os.MkdirAll(plat, 0o755)
	man := verityDir(t, plat, "root.squashfs", img)
	l := Layout{VolumesDir: filepath.Join(dir, "volumes"), DisksDir: filepath.Join(dir, "disks"), ConfigsDir: filepath.Join(dir, "configs")}
	p := Platform{Name: "app", Rev: "1", Dir: plat, Volumes: []string{"dm:root.squashfs"}, DM: map[string][]byte{"root.squashfs": man}}
	name := DMName("1", "app", "root.squashfs")

	set, err := MountPlatform(testLog(t), l, p)
	if err != nil {
		t.Fatalf("MountPlatform() error = %v", err)
	}
	target := l.Target("app", "root.squashfs")
	if got, err := os.ReadFile(filepath.Join(target, "bin", "busybox")); err != nil || len(got) == 0 {
		t.Errorf("read busybox from the verity mount: %d bytes, %v", len(got), err)
	}
	if devs := dmDevices(); !contains(devs, name) {
		t.Errorf("device-mapper devices = %q, want %s", devs, name)
	}
	if err := set.Unmount(); err != nil {
		t.Errorf("Unmount() error = %v", err)
	}
	if devs := dmDevices(); contains(devs, name) {
		t.Errorf("%s still there after Unmount", name)
	}
	noLeaks(t, dir)

	// A wrong root hash: the kernel refuses the file system's blocks.
	wrong := bytes.Replace(man, []byte(`"root_hash":"`), []byte(`"root_hash":"ff`), 1)
	wrong = append(wrong[:bytes.Index(wrong, []byte(`"root_hash":"`))+13+64], []byte(`"}`)...)
	p.DM = map[string][]byte{"root.squashfs": wrong}
	if set, err := MountPlatform(testLog(t), l, p); err == nil {
		set.Unmount()
		t.Errorf("MountPlatform(wrong root hash) succeeded")
	} else {
		t.Logf("wrong root hash: %v", err)
	}
	// Set.Verity alone cleans up after itself too.
	s := NewSet(testLog(t))
	if err := s.Verity(plat, "root.squashfs", wrong, name, target); err == nil || len(s.entries) != 0 {
		t.Errorf("Verity(wrong root hash) = %v, entries %v; want an error and none", err, s.entries)
	}
	if devs := dmDevices(); contains(devs, name) {
		t.Errorf("%s left after the failed mount", name)
	}
	noLeaks(t, dir)

	// One flipped byte in the middle of the data file (busybox's blocks).
	raw := mustRead(t, filepath.Join(plat, "root.squashfs"))
	raw[len(raw)/2] ^= 0x55
	os.WriteFile(filepath.Join(plat, "root.squashfs"), raw, 0o644)
	p.DM = map[string][]byte{"root.squashfs": man}
	set, err = MountPlatform(testLog(t), l, p)
	if err != nil {
		t.Logf("corrupted data: mount refused: %v", err)
	} else {
		eio := false
		filepath.WalkDir(target, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, unix.EIO) {
				eio = true
			}
			if err == nil && d.Type().IsRegular() {
				if _, rerr := os.ReadFile(path); errors.Is(rerr, unix.EIO) {
					eio = true
				}
			}
			return nil
		})
		if !eio {
			t.Errorf("corrupted data: every file read back without EIO")
		} else {
			t.Logf("corrupted data: mounted, reads fail with EIO")
		}
		if err := set.Unmount(); err != nil {
			t.Errorf("Unmount() error = %v", err)
		}
	}
	if devs := dmDevices(); contains(devs, name) {
		t.Errorf("%s left after the corrupted mount", name)
	}
	noLeaks(t, dir)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
