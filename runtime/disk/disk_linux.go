package disk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
	"github.com/pantavisor/pantavisor-go/runtime/internal/devmapper"
	"github.com/pantavisor/pantavisor-go/runtime/kmod"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

func (s *Set) directory(d *state.Disk) (*mounted, error) {
	if d.Path == "" || !filepath.IsAbs(d.Path) {
		return nil, fmt.Errorf("path %q: %w: want an absolute directory", d.Path, ErrBadDisk)
	}
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return nil, err
	}
	return &mounted{name: d.Name, down: func() error { return nil }}, nil
}

// hardwareMissing refuses a disk whose key hardware is absent; where the
// hardware is there, its key tools are still not part of this build.
func hardwareMissing(d *state.Disk, hw, node, devDir string) error {
	if _, err := os.Stat(filepath.Join(devDir, strings.TrimPrefix(node, "/dev/"))); err != nil {
		return fmt.Errorf("%w: needs %s key hardware (%s), which this device does not have", ErrUnsupported, hw, node)
	}
	return fmt.Errorf("%w: %s keys (caam-keygen/dcp-tool) are not handled by this build", ErrUnsupported, hw)
}

// loadModules asks for kernel modules a disk type needs when the kernel
// has them as modules (Debian's: dm_mod, dm_crypt, zram); built-in or
// missing ones are not an error here: the device's own error follows.
func loadModules(names ...string) {
	for _, n := range names {
		_ = kmod.Modprobe(context.Background(), []string{"-q", n}, nil, io.Discard, io.Discard)
	}
}

// Versatile crypt disks: plain dm-crypt, aes-cbc-essiv:sha256 with a
// 256-bit key, as upstream's "cryptsetup open --type plain -s 256".
const versatileCipher = "aes-cbc-essiv:sha256"

// cryptVersatile opens (and on first boot creates) the encrypted image of
// d and mounts it on Dir(d).
func (s *Set) cryptVersatile(d *state.Disk) (*mounted, error) {
	cp, err := ParseCryptPath(d.Path)
	if err != nil {
		return nil, err
	}
	if !devmapper.Available(s.env.DevDir) {
		loadModules("dm_mod", "dm_crypt")
	}
	dir := filepath.Dir(cp.Image)
	keyFile := filepath.Join(dir, cp.Key+".txt")
	initDone := filepath.Join(dir, cp.Key+".init_done")
	target := Dir(d, s.env.MediaDir)
	fresh := false
	if !exists(initDone) && !exists(keyFile) {
		// First boot: the key and the image; the file system comes once
		// the device is open.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(keyFile, key, 0o600); err != nil {
			return nil, fmt.Errorf("write key: %w", err)
		}
		if err := makeImage(cp.Image, int64(cp.SizeMB)<<20); err != nil {
			return nil, err
		}
		fresh = true
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("key %s: %w: %d bytes, want 32", keyFile, ErrBadDisk, len(key))
	}
	loop, err := volume.AttachLoop(cp.Image)
	if err != nil {
		return nil, err
	}
	// The loop device clears itself once the crypt target lets it go.
	defer loop.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(loop.Fd()), &st); err != nil {
		return nil, err
	}
	sectors, err := blockSectors(loop)
	if err != nil {
		return nil, err
	}
	name := cp.DeviceName()
	params := fmt.Sprintf("%s %s 0 %d:%d 0", versatileCipher, hex.EncodeToString(key[:32]), unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	devno, err := devmapper.Create(s.env.DevDir, name, devmapper.Target{Length: sectors, Type: "crypt", Params: params})
	if err != nil {
		return nil, err
	}
	remove := func() error { return devmapper.Remove(s.env.DevDir, name) }
	node, err := devmapper.Node(s.env.DevDir, name, devno)
	if err != nil {
		remove()
		return nil, err
	}
	if fresh || !exists(initDone) {
		if err := mkfs("ext4", node, []string{"-O", "^has_journal"}); err != nil {
			remove()
			return nil, err
		}
		if err := atomicfile.Write(initDone, nil, 0o600); err != nil {
			remove()
			return nil, err
		}
	}
	if err := mountAt(node, target, "ext4", 0); err != nil {
		remove()
		return nil, err
	}
	return &mounted{name: d.Name, down: func() error {
		if err := unix.Unmount(target, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		return remove()
	}}, nil
}

// makeImage creates the (sparse) image file of size bytes.
func makeImage(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create image: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func blockSectors(f *os.File) (uint64, error) {
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), errno)
	}
	return size / 512, nil
}

// mkfs formats dev as fstype: mkfs.<fstype>, or for ext2/3/4 e2fsprogs'
// mke2fs -t <fstype> (the initrds carry mke2fs alone, without the
// mkfs.ext* links).
func mkfs(fstype, dev string, opts []string) error {
	args := append([]string{"-q"}, opts...)
	path, err := sbinTool("mkfs." + fstype)
	if err != nil && strings.HasPrefix(fstype, "ext") {
		if p, err2 := sbinTool("mke2fs"); err2 == nil {
			path, err = p, nil
			args = append([]string{"-t", fstype}, args...)
		}
	}
	if err != nil {
		return fmt.Errorf("format %s as %s: %w", dev, fstype, err)
	}
	args = append(args, dev)
	if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("format %s as %s: %w: %s", dev, fstype, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sbinTool finds tool in PATH, /sbin or /usr/sbin (PID 1 may have no PATH).
func sbinTool(tool string) (string, error) {
	path, err := exec.LookPath(tool)
	if err == nil {
		return path, nil
	}
	for _, dir := range []string{"/sbin", "/usr/sbin"} {
		if p := filepath.Join(dir, tool); exists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: %w", tool, err)
}

func mountAt(dev, target, fstype string, flags uintptr) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, target, fstype, flags, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, target, err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// zram disks.

const zramControl = "/sys/class/zram-control"

// zramDevice adds a zram device sized and compressed as d asks.
func zramDevice(d *state.Disk, devDir string) (int, string, error) {
	ops, err := ProvisionOps(d.ProvisionOps)
	if err != nil {
		return 0, "", err
	}
	size := ops["disksize"]
	if !validSize(size) {
		return 0, "", fmt.Errorf("provision_ops %q: %w: disksize=<n>[KMG] is needed", d.ProvisionOps, ErrBadDisk)
	}
	for k := range ops {
		if k != "disksize" && k != "comp_algorithm" && k != "mem_limit" {
			return 0, "", fmt.Errorf("provision_ops %q: %w: unknown option %q", d.ProvisionOps, ErrBadDisk, k)
		}
	}
	if !exists(zramControl) {
		loadModules("zram")
	}
	raw, err := os.ReadFile(zramControl + "/hot_add")
	if err != nil {
		return 0, "", fmt.Errorf("zram: %w (kernel without CONFIG_ZRAM, or zram not loaded)", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, "", fmt.Errorf("zram hot_add: %q", raw)
	}
	sys := fmt.Sprintf("/sys/block/zram%d/", n)
	set := func(attr, v string) error {
		if err := os.WriteFile(sys+attr, []byte(v), 0); err != nil {
			return fmt.Errorf("zram%d %s=%s: %w", n, attr, v, err)
		}
		return nil
	}
	steps := [][2]string{}
	if a := ops["comp_algorithm"]; a != "" {
		steps = append(steps, [2]string{"comp_algorithm", a})
	}
	steps = append(steps, [2]string{"disksize", size})
	if m := ops["mem_limit"]; m != "" {
		if !validSize(m) {
			return 0, "", fmt.Errorf("provision_ops %q: %w: mem_limit", d.ProvisionOps, ErrBadDisk)
		}
		steps = append(steps, [2]string{"mem_limit", m})
	}
	for _, st := range steps {
		if err := set(st[0], st[1]); err != nil {
			zramRemove(n)
			return 0, "", err
		}
	}
	return n, filepath.Join(devDir, "zram"+strconv.Itoa(n)), nil
}

// zramRemove resets device n and gives it back.
func zramRemove(n int) error {
	_ = os.WriteFile(fmt.Sprintf("/sys/block/zram%d/reset", n), []byte("1"), 0)
	if err := os.WriteFile(zramControl+"/hot_remove", []byte(strconv.Itoa(n)), 0); err != nil {
		return fmt.Errorf("zram%d hot_remove: %w", n, err)
	}
	return nil
}

func (s *Set) zramSwap(d *state.Disk) (*mounted, error) {
	if d.Format != "" && d.Format != "swap" {
		return nil, fmt.Errorf("format %q: %w: a swap disk is formatted as swap", d.Format, ErrBadDisk)
	}
	n, dev, err := zramDevice(d, s.env.DevDir)
	if err != nil {
		return nil, err
	}
	if err := MakeSwap(dev); err != nil {
		zramRemove(n)
		return nil, err
	}
	if err := swapon(dev); err != nil {
		zramRemove(n)
		return nil, err
	}
	return &mounted{name: d.Name, down: func() error {
		if err := swapoff(dev); err != nil {
			return err
		}
		return zramRemove(n)
	}}, nil
}

func (s *Set) zramVolume(d *state.Disk) (*mounted, error) {
	format := d.Format
	if format == "" {
		format = "ext4"
	}
	if format != "ext4" && format != "ext3" {
		return nil, fmt.Errorf("format %q: %w: want ext4 or ext3", format, ErrBadDisk)
	}
	flags, err := MountOptions(d.MountOptions)
	if err != nil {
		return nil, err
	}
	target := Dir(d, s.env.MediaDir)
	n, dev, err := zramDevice(d, s.env.DevDir)
	if err != nil {
		return nil, err
	}
	if err := mkfs(format, dev, strings.Fields(d.FormatOptions)); err != nil {
		zramRemove(n)
		return nil, err
	}
	if err := mountAt(dev, target, format, flags); err != nil {
		zramRemove(n)
		return nil, err
	}
	return &mounted{name: d.Name, down: func() error {
		if err := unix.Unmount(target, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		return zramRemove(n)
	}}, nil
}

// MakeSwap writes a version 1 swap header (what mkswap writes) on dev.
func MakeSwap(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("mkswap: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("mkswap %s: %w", dev, err)
	}
	hdr, err := SwapHeader(size, os.Getpagesize())
	if err != nil {
		return fmt.Errorf("mkswap %s: %w", dev, err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("mkswap %s: %w", dev, err)
	}
	return f.Sync()
}

// SwapHeader is the first page of a swap area of size bytes: version 1,
// last page, no bad pages, a random UUID and "SWAPSPACE2" at its end.
func SwapHeader(size int64, page int) ([]byte, error) {
	pages := size / int64(page)
	if pages < 10 {
		return nil, fmt.Errorf("%w: %d bytes is too small for swap", ErrBadDisk, size)
	}
	if pages-1 > 0xffffffff {
		pages = 0xffffffff + 1
	}
	h := make([]byte, page)
	ne := binary.NativeEndian
	ne.PutUint32(h[1024:], 1)                          // version
	ne.PutUint32(h[1028:], uint32(pages-1))            // last_page
	ne.PutUint32(h[1032:], 0)                          // nr_badpages
	if _, err := rand.Read(h[1036:1052]); err != nil { // uuid
		return nil, err
	}
	h[1036+6] = h[1036+6]&0x0f | 0x40
	h[1036+8] = h[1036+8]&0x3f | 0x80
	copy(h[page-10:], "SWAPSPACE2")
	return h, nil
}

func swapon(dev string) error {
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		return fmt.Errorf("swapon %s: %w", dev, errno)
	}
	return nil
}

func swapoff(dev string) error {
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		return fmt.Errorf("swapoff %s: %w", dev, errno)
	}
	return nil
}
