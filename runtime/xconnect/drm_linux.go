package xconnect

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"golang.org/x/sys/unix"
)

// DRMMajor is the character device major of DRM nodes (/dev/dri/*).
const DRMMajor = 226

// drmMajor is DRMMajor but for tests, which have no DRM device.
var drmMajor uint32 = DRMMajor

// errNotDevice refuses to replace something that is not a character
// device at a drm link's target, or to inject a provider node that is
// not a DRM device.
var errNotDevice = errors.New("is not a DRM character device")

// injectNode makes the device node of a drm link at base in dir (the
// consumer's target directory) and returns its device number. The node
// is the provider's l.Socket (a /dev/dri node inside its root); the role
// picks the node of that device: "master" its primary node (cardN, KMS),
// "render" its render node (renderDN), any other role the node named.
// Mode and owner are the provider node's.
func (m *Mesh) injectNode(l ctrl.XConnectLink, dir int, base string) (uint64, error) {
	root, err := openRoot(m.procRoot, l.ProviderPid)
	if err != nil {
		return 0, err
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, path.Clean(l.Socket), &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: inRoot})
	if err != nil {
		return 0, &os.PathError{Op: "openat2", Path: l.Socket, Err: err}
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return 0, err
	}
	rdev := uint64(st.Rdev)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(rdev) != drmMajor {
		return 0, fmt.Errorf("provider's %s %w", l.Socket, errNotDevice)
	}
	if rdev, err = m.drmNodeFor(rdev, l.Role); err != nil {
		return 0, err
	}
	if err := clearStale(dir, base, unix.S_IFCHR, errNotDevice); err != nil {
		return 0, err
	}
	if err := unix.Mknodat(dir, base, unix.S_IFCHR|(st.Mode&0o777), int(rdev)); err != nil {
		return 0, &os.PathError{Op: "mknod", Path: l.Target, Err: err}
	}
	// mknod applies the umask; the mode is the provider's.
	if err := unix.Fchmodat(dir, base, st.Mode&0o777, 0); err == nil {
		err = unix.Fchownat(dir, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		_ = unix.Unlinkat(dir, base, 0)
		return 0, err
	}
	return rdev, nil
}

// drmNodeFor returns the node of the DRM device of rdev that role asks
// for: "master" the primary (card, minor < 128), "render" the render node
// (minor ≥ 128), found as siblings in sysfs
// (/sys/dev/char/226:N/device/drm/*/dev).
func (m *Mesh) drmNodeFor(rdev uint64, role string) (uint64, error) {
	var prefix string
	switch role {
	case "master":
		prefix = "card"
	case "render":
		prefix = "renderD"
	default:
		return rdev, nil
	}
	if isRender := unix.Minor(rdev) >= 128; isRender == (prefix == "renderD") {
		return rdev, nil
	}
	sys := fmt.Sprintf("%s/dev/char/%d:%d/device/drm", m.sysRoot, unix.Major(rdev), unix.Minor(rdev))
	nodes, _ := filepath.Glob(sys + "/" + prefix + "*/dev")
	for _, n := range nodes {
		b, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil && maj == drmMajor {
			return unix.Mkdev(maj, min), nil
		}
	}
	return 0, fmt.Errorf("drm: device %d:%d has no %s node (role %q)", unix.Major(rdev), unix.Minor(rdev), prefix, role)
}

// unlinkTarget removes what in put at its target: a socket, or its device
// node if that is still there (not something the consumer put instead).
func (m *Mesh) unlinkTarget(in *injected) error {
	if in.ln == nil {
		var st unix.Stat_t
		if err := unix.Fstatat(in.dir, in.base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || uint64(st.Rdev) != in.rdev {
			return nil
		}
	}
	return unix.Unlinkat(in.dir, in.base, 0)
}
