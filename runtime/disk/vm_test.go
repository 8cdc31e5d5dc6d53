//go:build linux && amd64

package disk

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/debpkg"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// The dm-crypt test needs a kernel with device-mapper. TestCryptInVM
// boots Debian's amd64 kernel (the one x64-uefi images carry, from the
// mkimage cache) in QEMU twice, with this test binary as /init and an ext4
// disk as /storage: TestMain sees PID 1, mounts the kernel file systems
// and the disk, loads the modules and runs TestCryptBoot, which makes the
// encrypted disk and writes a file on the first boot and reads it back on
// the second.

// vmModules are loaded in order in the VM (paths below lib/modules/<rel>/kernel).
var vmModules = []string{"drivers/virtio/virtio.ko", "drivers/virtio/virtio_ring.ko", "drivers/virtio/virtio_pci_modern_dev.ko",
	"drivers/virtio/virtio_pci_legacy_dev.ko", "drivers/virtio/virtio_pci.ko", "drivers/block/virtio_blk.ko",
	"drivers/block/loop.ko", "drivers/md/dm-mod.ko", "drivers/md/dm-crypt.ko", "crypto/authenc.ko", "crypto/essiv.ko",
	"lib/crc16.ko", "crypto/crc32c_generic.ko", "fs/mbcache.ko", "fs/jbd2/jbd2.ko", "fs/ext4/ext4.ko",
	"lib/reed_solomon/reed_solomon.ko", "drivers/md/dm-bufio.ko", "drivers/md/dm-verity.ko", "fs/squashfs/squashfs.ko"}

func TestMain(m *testing.M) {
	if os.Getpid() == 1 {
		os.Exit(vmInit(m))
	}
	os.Exit(m.Run())
}

// vmInit is /init in the VM.
func vmInit(m *testing.M) int {
	for _, fs := range [][3]string{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"}} {
		os.MkdirAll(fs[1], 0o755)
		if err := unix.Mount(fs[0], fs[1], fs[2], 0, ""); err != nil {
			fmt.Println("vm: mount", fs[1], err)
		}
	}
	order, _ := os.ReadFile("/mods/order")
	for _, mod := range strings.Fields(string(order)) {
		f, err := os.Open("/mods/" + mod)
		if err == nil {
			err = unix.FinitModule(int(f.Fd()), "", 0)
			f.Close()
		}
		if err != nil && err != unix.EEXIST {
			fmt.Println("vm: load", mod, err)
		}
	}
	os.Setenv("PATH", "/sbin:/bin")
	for i := 0; i < 100 && !exists("/dev/vda"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	os.MkdirAll("/storage", 0o755)
	if err := unix.Mount("/dev/vda", "/storage", "ext4", 0, ""); err != nil {
		fmt.Println("vm: mount /storage", err)
	}
	flag.Set("test.run", "^TestCryptBoot$")
	flag.Set("test.v", "true")
	rc := m.Run()
	if os.Getenv("PV_VM_BOOT") == "1" {
		// CI=true: in here a skip would be a failure.
		v := exec.Command("/volume.test", "-test.run=^TestVerity$", "-test.v")
		v.Env = append(os.Environ(), "PV_TEST_SQUASHFS=/verity.squashfs", "CI=true")
		v.Stdout, v.Stderr = os.Stdout, os.Stdout
		if err := v.Run(); err != nil {
			fmt.Println("vm: volume.test:", err)
			rc = 1
		}
	}
	fmt.Printf("VM-DONE rc=%d\n", rc)
	unix.Unmount("/storage", 0)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	return rc
}

// debianKernel finds vmlinuz and the module tree of Debian's amd64 kernel
// in the mkimage cache.
func debianKernel(t *testing.T) (vmlinuz, modDir string) {
	cache := os.Getenv("PV_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "pantavisor-mkimage")
	}
	find := func(dir string) (string, string) {
		ks, _ := filepath.Glob(filepath.Join(dir, "*", "boot", "vmlinuz-*-amd64"))
		for _, k := range ks {
			rel := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
			md := filepath.Join(filepath.Dir(filepath.Dir(k)), "lib", "modules", rel, "kernel")
			if _, err := os.Stat(filepath.Join(md, "drivers", "md", "dm-crypt.ko")); err == nil {
				return k, md
			}
		}
		return "", ""
	}
	if k, md := find(filepath.Join(cache, "unpacked")); k != "" {
		return k, md
	}
	// No image build filled the cache: fetch the kernel of the x64-uefi
	// recipe the way mkimage does (a Go test run before any image build).
	r, err := recipe.Load("../../targets/x64-uefi.toml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := debpkg.New(debpkg.Options{Cache: cache, Arch: r.Arch, Mirror: r.Debian.Mirror, Suite: r.Debian.Suite,
		Components: r.Debian.Components, Keyring: r.Debian.Keyring})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Update(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := a.FetchImage(ctx, r.Kernel.Package, r.Kernel.Version, "linux-image-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "test-kernel", p.SHA256)
	if k, md := find(filepath.Dir(dir)); k != "" {
		return k, md
	}
	if err := debpkg.Unpack(ctx, p.Path, dir); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	k, md := find(filepath.Dir(dir))
	if k == "" {
		t.Fatalf("%s has no vmlinuz with dm-crypt.ko", p.Path)
	}
	return k, md
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// TestCryptBoot is one boot of TestCryptInVM (PV_VM_BOOT=1 or 2).
func TestCryptBoot(t *testing.T) {
	boot := os.Getenv("PV_VM_BOOT")
	if boot == "" {
		t.Skip("skipping: runs in the VM of TestCryptInVM")
	}
	img := "/storage/dm-crypt-files/secrets/versatile.img"
	d := state.Disk{Name: "secrets", Type: "dm-crypt-versatile", Path: img + ",8,versatile_key"}
	s := NewSet(nil, Env{MediaDir: "/tmp/media"})
	if err := s.Mount([]state.Disk{d}); err != nil {
		t.Fatalf("boot %s: Mount() error = %v", boot, err)
	}
	dir := Dir(&d, "/tmp/media")
	if !mountedOn(dir) {
		t.Errorf("boot %s: %s not mounted", boot, dir)
	}
	secret := []byte("the plain text of a secret file 0123456789")
	f := filepath.Join(dir, "secret")
	if boot == "1" {
		if err := os.WriteFile(f, secret, 0o600); err != nil {
			t.Errorf("write: %v", err)
		}
	} else if got, err := os.ReadFile(f); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("boot %s: the file of boot 1 = %q, %v", boot, got, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("boot %s: Close() error = %v", boot, err)
	}
	if key, err := os.ReadFile(filepath.Join(filepath.Dir(img), "versatile_key.txt")); err != nil || len(key) != 32 {
		t.Errorf("key = %d bytes, %v, want 32", len(key), err)
	}
	if raw, _ := os.ReadFile(img); bytes.Contains(raw, secret) {
		t.Errorf("the image holds the plain text")
	}
	fmt.Printf("boot %s: %s mounted on %s\n", boot, d.Name, dir)
}

// TestCryptInVM: an encrypted volume made on the first boot keeps its
// file over a reboot, and dm-verity volumes mount and catch corruption
// (runtime/volume's TestVerity), on a real device-mapper (Debian's kernel
// in QEMU, TCG).
func TestCryptInVM(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: boots a VM")
	}
	vmlinuz, modDir := debianKernel(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, tool := range []string{"qemu-system-x86_64", "cpio", gobin} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "skipping: no %s", tool)
		}
	}
	mke2fs := "/sbin/mke2fs"
	if _, err := os.Stat(mke2fs); err != nil {
		testenv.Skipf(t, "skipping: no %s (e2fsprogs)", mke2fs)
	}
	root := t.TempDir()
	// This package's tests, static, as /init.
	build := exec.Command(gobin, "test", "-c", "-o", filepath.Join(root, "init"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v: %s", err, out)
	}
	build = exec.Command(gobin, "test", "-c", "-o", filepath.Join(root, "volume.test"), "../volume")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ../volume: %v: %s", err, out)
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	sqfs, err := rootfs.Build(rootfs.Options{})
	if err != nil {
		t.Fatalf("rootfs.Build() error = %v", err)
	}
	copyFile(t, sqfs, filepath.Join(root, "verity.squashfs"), 0o644)
	var order []string
	for _, m := range vmModules {
		copyFile(t, filepath.Join(modDir, m), filepath.Join(root, "mods", filepath.Base(m)), 0o644)
		order = append(order, filepath.Base(m))
	}
	os.WriteFile(filepath.Join(root, "mods", "order"), []byte(strings.Join(order, "\n")), 0o644)
	// mke2fs and its libraries, from the host; no mkfs.ext4 link, as in
	// the images' initrds
	copyFile(t, mke2fs, filepath.Join(root, "sbin", "mke2fs"), 0o755)
	lddOut, err := exec.Command("ldd", mke2fs).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	for _, l := range strings.Split(string(lddOut), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				copyFile(t, f, filepath.Join(root, f), 0o755)
			}
		}
	}
	storage := filepath.Join(t.TempDir(), "storage.img")
	if err := os.WriteFile(storage, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(storage, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mke2fs, "-q", "-F", "-t", "ext4", storage).CombinedOutput(); err != nil {
		t.Fatalf("mkfs storage: %v: %s", err, out)
	}
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	cpio := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+initrd)
	cpio.Dir = root
	if out, err := cpio.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	for _, boot := range []string{"1", "2"} {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		q := exec.CommandContext(ctx, "qemu-system-x86_64", "-m", "512", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
			"-drive", "file="+storage+",format=raw,if=virtio",
			"-kernel", vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 loglevel=3 rdinit=/init PV_VM_BOOT="+boot)
		var console bytes.Buffer
		q.Stdout, q.Stderr = &console, &console
		err := q.Run()
		cancel()
		got := console.String()
		sc := bufio.NewScanner(strings.NewReader(got))
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, "---") || strings.Contains(l, "wrong root hash") || strings.Contains(l, "corrupted data") || strings.Contains(l, "_test.go") || strings.HasPrefix(l, "vm:") || strings.HasPrefix(l, "VM-DONE") || strings.HasPrefix(l, "boot ") {
				t.Logf("boot %s: %s", boot, l)
			}
		}
		if boot == "1" && !strings.Contains(got, "--- PASS: TestVerity") {
			t.Errorf("boot 1: runtime/volume's TestVerity did not pass in the VM; console:\n%s", got)
		}
		if !strings.Contains(got, "--- PASS: TestCryptBoot") || !strings.Contains(got, "VM-DONE rc=0") {
			t.Fatalf("boot %s: TestCryptBoot did not pass in the VM (qemu: %v); console:\n%s", boot, err, got)
		}
	}
}
