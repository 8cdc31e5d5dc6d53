package platform

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// exportRoot makes the root file system of the running exporter name
// visible read-only at <Paths.Exports>/<name> (upstream's export.sh mount
// hook): an overlay rootfs is re-assembled on the host from its layers
// (upper first), any other rootfs path is bind-mounted. It reads the
// final configuration liblxc ran with (<lxcpath>/<name>/config).
func exportRoot(exports, lxcpath, name string) (string, error) {
	root, err := rootfsPath(filepath.Join(lxcpath, name, "config"))
	if err != nil {
		return "", err
	}
	target := filepath.Join(exports, name)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", fmt.Errorf("export %s: %w", name, err)
	}
	typ, rest, _ := strings.Cut(root, ":")
	switch typ {
	case "overlay", "overlayfs":
		layers := strings.Split(rest, ":")
		// rootfs.path lists lowers bottom-last then the upper; overlayfs
		// wants the topmost lower first.
		lowers := append([]string{layers[len(layers)-1]}, layers[:len(layers)-1]...)
		opts := "lowerdir=" + strings.Join(lowers, ":")
		if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts); err != nil {
			return "", fmt.Errorf("export %s: mount overlay %s: %w", name, opts, err)
		}
	default:
		src := root
		if typ == "dir" {
			src = rest
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("export %s: bind %s: %w", name, src, err)
		}
		unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	return target, nil
}

// unexport undoes exportRoot.
func unexport(target string) error {
	if target == "" {
		return nil
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unexport %s: %w", target, err)
	}
	os.Remove(target)
	return nil
}

// rootfsPath returns lxc.rootfs.path of an lxc config file.
func rootfsPath(conf string) (string, error) {
	f, err := os.Open(conf)
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "lxc.rootfs.path" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("export: %s: no lxc.rootfs.path", conf)
}
