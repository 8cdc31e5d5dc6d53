// Package rootfs builds tiny container root filesystems for tests: a static
// busybox with its applet symlinks, an /etc/passwd, an init script and any extra
// files, packed reproducibly into a squashfs image and cached by content.
//
// Usage:
//
//	img, err := rootfs.Build(rootfs.Options{CacheDir: dir})
//	// img is …/<sha256>.squashfs; build it again and you get the same path.
//
// It shells out to mksquashfs (squashfs-tools) and needs a static busybox
// (Debian busybox-static); [Available] says whether both are present.
package rootfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrMissingTool is returned when busybox or mksquashfs cannot be found.
var ErrMissingTool = errors.New("missing tool")

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// DefaultInit is the init script installed at /sbin/init unless Options.Init
// replaces it. It announces itself on the console, then sleeps until it is
// asked to halt (LXC sends SIGPWR by default, SIGTERM is honoured as well).
const DefaultInit = `#!/bin/sh
trap 'echo "pv-fixture: halt"; exit 0' PWR TERM INT
echo "pv-fixture: init started as pid $$"
while :; do
	sleep 3600 &
	wait $!
done
`

// File is an extra file placed in the image.
type File struct {
	// Path is the absolute path inside the image.
	Path string
	// Mode is the permission bits; 0 means 0644.
	Mode fs.FileMode
	// Data is the file content.
	Data []byte
	// Link, when set, makes the entry a symlink to Link instead of a file.
	Link string
}

// Options describe an image.
type Options struct {
	// CacheDir holds built images; "" means <os temp>/pv-rootfs-cache.
	CacheDir string
	// Busybox is the static busybox binary; "" means DefaultBusybox.
	Busybox string
	// Init replaces DefaultInit at /sbin/init when non-empty.
	Init string
	// Files are added after the base tree and may override it.
	Files []File
}

// Available reports why images cannot be built here, or nil when they can.
func Available() error {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		return fmt.Errorf("%w: busybox (install busybox-static): %w", ErrMissingTool, err)
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		return fmt.Errorf("%w: mksquashfs (install squashfs-tools): %w", ErrMissingTool, err)
	}
	return nil
}

// Build returns the path of a squashfs image for o, building it only when the
// cache has no image with the same content key.
func Build(o Options) (string, error) {
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	if o.Init == "" {
		o.Init = DefaultInit
	}
	if o.CacheDir == "" {
		o.CacheDir = defaultCache()
	}
	bb, err := os.ReadFile(o.Busybox)
	if err != nil {
		return "", fmt.Errorf("read busybox: %w", err)
	}
	applets, err := applets(o.Busybox)
	if err != nil {
		return "", err
	}
	files := baseFiles(bb, applets, o.Init)
	for _, f := range o.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return "", fmt.Errorf("file %q: path must be absolute and clean", f.Path)
		}
	}
	files = append(files, o.Files...)
	key := contentKey(files)
	img := filepath.Join(o.CacheDir, key+".squashfs")
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("create cache dir: %w", err)
	}
	if err := pack(files, img); err != nil {
		return "", err
	}
	return img, nil
}

func defaultCache() string { return filepath.Join(os.TempDir(), "pv-rootfs-cache") }

// applets lists busybox's applets as paths relative to / (bin/sh, …).
func applets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	var list []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "bin/busybox" || strings.Contains(l, "..") {
			continue
		}
		list = append(list, l)
	}
	return list, nil
}

func baseFiles(busybox []byte, applets []string, init string) []File {
	files := []File{
		{Path: "/bin/busybox", Mode: 0o755, Data: busybox},
		{Path: "/sbin/init", Mode: 0o755, Data: []byte(init)},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "/etc/hostname", Data: []byte("pv-fixture\n")},
		{Path: "/etc/os-release", Data: []byte("ID=pv-fixture\nNAME=\"pantavisor test fixture\"\n")},
	}
	for _, a := range applets {
		if a == "sbin/init" {
			continue
		}
		files = append(files, File{Path: "/" + a, Link: "/bin/busybox"})
	}
	return files
}

// contentKey hashes the final file list (later entries override earlier ones).
func contentKey(files []File) string {
	final := map[string]File{}
	for _, f := range files {
		final[f.Path] = f
	}
	paths := make([]string, 0, len(final))
	for p := range final {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	fmt.Fprintf(h, "pv-rootfs v1\n")
	for _, p := range paths {
		f := final[p]
		d := sha256.Sum256(f.Data)
		fmt.Fprintf(h, "%q %o %q %x\n", p, f.Mode, f.Link, d)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pack writes the tree into a temp dir and runs mksquashfs into img atomically.
func pack(files []File, img string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(img), ".build-")
	if err != nil {
		return fmt.Errorf("create build dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "var/log", "pantavisor"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("chmod tmp: %w", err)
	}
	for _, f := range files {
		dst := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("create parent of %s: %w", f.Path, err)
		}
		_ = os.Remove(dst)
		if f.Link != "" {
			if err := os.Symlink(f.Link, dst); err != nil {
				return fmt.Errorf("link %s: %w", f.Path, err)
			}
			continue
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(dst, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		if err := os.Chmod(dst, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", f.Path, err)
		}
	}
	out := filepath.Join(tmp, "image.squashfs")
	cmd := exec.Command("mksquashfs", root, out, "-noappend", "-reproducible", "-all-root",
		"-mkfs-time", "0", "-all-time", "0", "-no-xattrs", "-quiet", "-no-progress", "-comp", "gzip")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mksquashfs: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(out, img); err != nil {
		return fmt.Errorf("install image: %w", err)
	}
	return nil
}
