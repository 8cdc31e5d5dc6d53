package volume

import (
	"golang.org/x/sys/unix"

	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: mounting needs root")
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fixture returns a squashfs image built once per cache dir.
func fixture(t testing.TB) string {
	t.Helper()
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	img, err := rootfs.Build(rootfs.Options{})
	if err != nil {
		t.Fatalf("rootfs.Build() error = %v", err)
	}
	return img
}

// noLeaks waits briefly for autoclear (asynchronous in the kernel) and fails
// if anything under dir is still mounted or bound to a loop device.
func noLeaks(t *testing.T, dir string) {
	t.Helper()
	var leaks []string
	for i := 0; i < 50; i++ {
		var err error
		leaks, err = Leaks(dir)
		if err != nil {
			t.Fatalf("Leaks(%s) error = %v", dir, err)
		}
		if len(leaks) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("Leaks(%s) = %q, want none", dir, leaks)
}

func TestLoopSquashfs(t *testing.T) {
	needRoot(t)
	img := fixture(t)
	dir := t.TempDir()
	vol := filepath.Join(dir, "trail", "app", "root.squashfs")
	os.MkdirAll(filepath.Dir(vol), 0o755)
	if err := os.Link(img, vol); err != nil {
		data, _ := os.ReadFile(img)
		os.WriteFile(vol, data, 0o644)
	}
	s := NewSet(testLog(t))
	target := filepath.Join(dir, "volumes", "app", "root.squashfs")
	if err := s.Loop(vol, target); err != nil {
		t.Fatalf("Loop() error = %v", err)
	}
	got, err := os.ReadFile(filepath.Join(target, "etc", "passwd"))
	if err != nil || !strings.HasPrefix(string(got), "root:") {
		t.Errorf("read etc/passwd = %q, %v, want root entry", got, err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
		t.Errorf("write into squashfs mount succeeded, want read-only")
	}
	leaks, _ := Leaks(dir)
	if len(leaks) != 2 {
		t.Errorf("Leaks() while mounted = %q, want the mount and its loop device", leaks)
	}
	if err := s.Unmount(); err != nil {
		t.Errorf("Unmount() error = %v", err)
	}
	noLeaks(t, dir)
}

func TestBadVolumes(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fake.squashfs"), []byte("this is not a squashfs image at all"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.squashfs"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "noext"), []byte("x"), 0o644)
	tests := []struct {
		name, vol string
		is        error
		msg       string
	}{
		{"not squashfs", "fake.squashfs", ErrNotSquashfs, "fake.squashfs"},
		{"empty", "empty.squashfs", ErrNotSquashfs, "empty.squashfs"},
		{"missing", "missing.squashfs", os.ErrNotExist, "missing.squashfs"},
		{"no extension", "noext", ErrUnsupported, "noext"},
		{"handler", "dm:root.squashfs", ErrUnsupported, "dm"},
		{"escape", "../x.squashfs", ErrBadName, "../x.squashfs"},
		{"missing bind", "x.bind", os.ErrNotExist, "x.bind"},
		{"missing data", "x.data", os.ErrNotExist, "x.data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet(testLog(t))
			err := s.Volume(dir, tc.vol, filepath.Join(dir, "mnt", tc.name))
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Volume(%q) error = %v, want %v naming %q", tc.vol, err, tc.is, tc.msg)
			}
			if m := s.Mounts(); len(m) != 0 {
				t.Errorf("Mounts() after failure = %q, want none", m)
			}
		})
	}
	noLeaks(t, dir)
}

func TestMountPlatform(t *testing.T) {
	needRoot(t)
	img := fixture(t)
	dir := t.TempDir()
	plat := filepath.Join(dir, "trails", "3", "app")
	os.MkdirAll(filepath.Join(plat, "conf.data", "sub"), 0o755)
	os.WriteFile(filepath.Join(plat, "conf.data", "sub", "f"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(plat, "hosts.bind"), []byte("127.0.0.1 x\n"), 0o644)
	data, _ := os.ReadFile(img)
	os.WriteFile(filepath.Join(plat, "root.squashfs"), data, 0o644)
	cfg := filepath.Join(dir, "trails", "3", "_config", "app")
	os.MkdirAll(filepath.Join(cfg, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "real"), []byte("followed"), 0o600)
	os.Symlink(filepath.Join(dir, "real"), filepath.Join(cfg, "etc", "link"))
	os.WriteFile(filepath.Join(cfg, "etc", "motd"), []byte("hi"), 0o640)

	l := Layout{
		VolumesDir: filepath.Join(dir, "volumes"),
		DisksDir:   filepath.Join(dir, "storage", "disks"),
		ConfigsDir: filepath.Join(dir, "configs"),
	}
	p := Platform{
		Name: "app", Rev: "3", Dir: plat, ConfigDir: cfg,
		Volumes: []string{"root.squashfs", "conf.data", "hosts.bind"},
		Storage: map[string]Persistence{"lxc-overlay": Boot, "docker--var-lib": Permanent, "cache": Revision},
	}
	s, err := MountPlatform(testLog(t), l, p)
	if err != nil {
		t.Fatalf("MountPlatform() error = %v", err)
	}
	checks := map[string]string{
		"volumes/app/conf.data/sub/f": "data",
		"volumes/app/hosts.bind":      "127.0.0.1 x\n",
		"configs/app/etc/link":        "followed",
		"configs/app/etc/motd":        "hi",
	}
	for rel, want := range checks {
		if got, err := os.ReadFile(filepath.Join(dir, rel)); string(got) != want {
			t.Errorf("read %s = %q, %v, want %q", rel, got, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "configs/app/etc/link")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("configs/app/etc/link = %v, %v, want regular 0600 file", fi, err)
	}
	// Storage writes land in the disks directory.
	os.WriteFile(filepath.Join(dir, "volumes/app/docker--var-lib/p"), []byte("perm"), 0o644)
	os.WriteFile(filepath.Join(dir, "volumes/app/cache/r"), []byte("rev"), 0o644)
	if got, _ := os.ReadFile(filepath.Join(dir, "storage/disks/perm/app/docker--var-lib/p")); string(got) != "perm" {
		t.Errorf("permanent storage content = %q, want perm", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "storage/disks/rev/3/app/cache/r")); string(got) != "rev" {
		t.Errorf("revision storage content = %q, want rev", got)
	}
	if got, want := len(s.Mounts()), 6; got != want {
		t.Errorf("len(Mounts()) = %d, want %d: %q", got, want, s.Mounts())
	}
	if err := s.Unmount(); err != nil {
		t.Errorf("Unmount() error = %v", err)
	}
	noLeaks(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "configs/app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config overlay after Unmount: %v, want removed", err)
	}
}

func TestMountPlatformRollback(t *testing.T) {
	needRoot(t)
	img := fixture(t)
	dir := t.TempDir()
	data, _ := os.ReadFile(img)
	os.WriteFile(filepath.Join(dir, "root.squashfs"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "bad.squashfs"), []byte("nope"), 0o644)
	l := Layout{VolumesDir: filepath.Join(dir, "v"), DisksDir: filepath.Join(dir, "d"), ConfigsDir: filepath.Join(dir, "c")}
	p := Platform{Name: "app", Dir: dir, Volumes: []string{"root.squashfs", "bad.squashfs"}, Storage: map[string]Persistence{"o": Boot}}
	_, err := MountPlatform(testLog(t), l, p)
	if !errors.Is(err, ErrNotSquashfs) || !strings.Contains(err.Error(), `"bad.squashfs"`) {
		t.Errorf("MountPlatform() error = %v, want ErrNotSquashfs naming bad.squashfs", err)
	}
	noLeaks(t, dir)
}

// TestMountPlatformDisk: storage on a named disk lives below the disk's
// directory; a disk that must be a mount of its own and is not (a crypt
// disk that failed to open) fails the platform instead of putting its
// storage on the disk below.
func TestMountPlatformDisk(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	l := Layout{VolumesDir: filepath.Join(dir, "v"), DisksDir: filepath.Join(dir, "d"), ConfigsDir: filepath.Join(dir, "c")}
	crypt := filepath.Join(dir, "media", "crypt")
	if err := os.MkdirAll(crypt, 0o755); err != nil {
		t.Fatal(err)
	}
	p := Platform{Name: "app", Dir: dir, Storage: map[string]Persistence{"a": Boot, "secret": Permanent},
		StorageDisk: map[string]DiskDir{"secret": {Name: "crypt", Dir: crypt, MountPoint: true}}}
	_, err := MountPlatform(testLog(t), l, p)
	if !errors.Is(err, ErrNotMounted) || !strings.Contains(err.Error(), `storage "secret": disk "crypt"`) {
		t.Errorf("MountPlatform() error = %v, want ErrNotMounted naming the storage and disk", err)
	}
	noLeaks(t, dir)

	if err := unix.Mount("tmpfs", crypt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(crypt, unix.MNT_DETACH)
	p.StorageDisk["plain"] = DiskDir{Name: "plain", Dir: filepath.Join(dir, "plain")}
	p.Storage["plain"] = Revision
	p.Rev = "3"
	set, err := MountPlatform(testLog(t), l, p)
	if err != nil {
		t.Fatalf("MountPlatform() on mounted disk error = %v", err)
	}
	os.WriteFile(filepath.Join(l.Target("app", "secret"), "k"), []byte("v"), 0o600)
	os.WriteFile(filepath.Join(l.Target("app", "plain"), "k"), []byte("v"), 0o600)
	for _, f := range []string{filepath.Join(crypt, "perm", "app", "secret", "k"), filepath.Join(dir, "plain", "rev", "3", "app", "plain", "k")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("storage file not on its disk: %v", err)
		}
	}
	if err := set.Unmount(); err != nil {
		t.Errorf("Unmount() = %v", err)
	}
	p.StorageDisk["secret"] = DiskDir{Name: "swap"}
	if _, err := MountPlatform(testLog(t), l, p); !errors.Is(err, ErrUnsupported) {
		t.Errorf("MountPlatform(storage on swap) error = %v, want ErrUnsupported", err)
	}
}

func TestParsePersistence(t *testing.T) {
	for in, want := range map[string]Persistence{"permanent": Permanent, "revision": Revision, "boot": Boot, "": Boot, "Permanent": Boot, "junk": Boot} {
		if got := ParsePersistence(in); got != want {
			t.Errorf("ParsePersistence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStorageSource(t *testing.T) {
	tests := []struct {
		p    Persistence
		want string
	}{
		{Permanent, "/s/disks/perm/app/vol"},
		{Revision, "/s/disks/rev/7/app/vol"},
		{Boot, ""},
	}
	for _, tc := range tests {
		if got := StorageSource("/s/disks", "7", "app", "vol/", tc.p); got != tc.want {
			t.Errorf("StorageSource(%s) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	info := "36 35 98:0 / /mnt/a rw - ext3 /dev/root rw\n" +
		"37 35 98:0 / /mnt/a\\040b/c rw - ext3 /dev/root rw\n" +
		"38 35 98:0 / /mnt/ab rw - ext3 /dev/root rw\n" +
		"short line\n"
	got, err := mountsUnder(strings.NewReader(info), "/mnt/a")
	want := []string{"mount /mnt/a"}
	if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("mountsUnder(/mnt/a) = %q, %v, want %q", got, err, want)
	}
	got, _ = mountsUnder(strings.NewReader(info), "/mnt/a b")
	if len(got) != 1 || got[0] != "mount /mnt/a b/c" {
		t.Errorf("mountsUnder(/mnt/a b) = %q, want the escaped mount", got)
	}
}

func TestCheckSquashfs(t *testing.T) {
	for in, ok := range map[string]bool{"hsqs....": true, "hsq": false, "": false, "sqsh": false} {
		err := checkSquashfs(strings.NewReader(in), "v")
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrNotSquashfs)) {
			t.Errorf("checkSquashfs(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

func FuzzMountsUnder(f *testing.F) {
	f.Add("36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/root rw\n", "/mnt")
	f.Add("\\\\\\0 1 2 3 \\777\n", "/")
	f.Fuzz(func(t *testing.T, info, prefix string) {
		got, err := mountsUnder(strings.NewReader(info), prefix)
		if err != nil {
			return
		}
		for _, m := range got {
			if !strings.HasPrefix(m, "mount ") {
				t.Errorf("mountsUnder() entry %q lacks prefix", m)
			}
		}
	})
}

func TestLoopOtherFS(t *testing.T) {
	needRoot(t)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		testenv.Skipf(t, "skipping: no mkfs.ext4 (Debian e2fsprogs)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "data.ext4")
	f, _ := os.Create(img)
	f.Truncate(4 << 20)
	f.Close()
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	s := NewSet(testLog(t))
	target := filepath.Join(dir, "mnt")
	if err := s.Volume(dir, "data.ext4", target); err != nil {
		t.Fatalf("Volume(data.ext4) error = %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "lost+found")); err != nil {
		t.Errorf("ext4 volume content: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
		t.Errorf("write into ext4 volume succeeded, want read-only")
	}
	if err := s.Unmount(); err != nil {
		t.Errorf("Unmount() error = %v", err)
	}
	noLeaks(t, dir)
}

// TestLoopIndexBase: with PV_LOOP_INDEX_BASE set, volumes take the free
// loop devices from that index up (created when missing), not the
// kernel's lowest free one.
func TestLoopIndexBase(t *testing.T) {
	needRoot(t)
	const base = 40
	SetLoopIndexBase(base)
	t.Cleanup(func() { SetLoopIndexBase(-1) })
	dir := t.TempDir()
	prev := -1
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		file := filepath.Join(dir, fmt.Sprintf("img%d", i))
		if err := os.WriteFile(file, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		dev, err := AttachLoop(file)
		if err != nil {
			t.Fatalf("AttachLoop: %v", err)
		}
		held = append(held, dev)
		var n int
		if _, err := fmt.Sscanf(dev.Name(), "/dev/loop%d", &n); err != nil || n < base || n <= prev {
			t.Errorf("loop device #%d = %s, want /dev/loopN with N >= %d and above the previous %d", i+1, dev.Name(), base, prev)
		}
		prev = n
		b, err := os.ReadFile(fmt.Sprintf("/sys/block/loop%d/loop/backing_file", n))
		if err != nil || strings.TrimSpace(string(b)) != file {
			t.Errorf("loop%d backs %q (%v), want %s", n, b, err, file)
		}
	}
	for _, f := range held {
		f.Close()
	}
	held = nil
	noLeaks(t, dir)
}
