package volume

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Layout holds the host directories volumes are mounted from and into.
type Layout struct {
	// VolumesDir receives <plat>/<name> mount points (upstream /volumes).
	VolumesDir string
	// DisksDir holds permanent and revision storage (upstream /storage/disks).
	DisksDir string
	// ConfigsDir receives the copied config overlays (upstream /configs).
	ConfigsDir string
}

// Platform is what MountPlatform needs to know about one platform.
type Platform struct {
	// Name of the platform (the first element of its state keys).
	Name string
	// Rev is the revision being run (for "revision" storage).
	Rev string
	// Dir is the platform directory in the materialised trail
	// (trails/<rev>/<plat>); volume files are relative to it.
	Dir string
	// Volumes lists root-volume first, then volumes[], as written in run.json.
	Volumes []string
	// Storage maps run.json storage entries to their persistence.
	Storage map[string]Persistence
	// StorageDisk maps storage entries to the disk they live on (entries
	// on the default layout are absent).
	StorageDisk map[string]DiskDir
	// ConfigDir is the _config/<plat> tree of the trail ("" or missing: none).
	ConfigDir string
	// DM maps the file of each "dm:<file>" volume to its manifest, the
	// state's "<plat>/_dm/<file>.json" (signed with the state: it holds the
	// root hash).
	DM map[string][]byte
}

// DiskDir is the disk a storage entry lives on (runtime/disk brings it up).
type DiskDir struct {
	// Name is the disk's name, for messages.
	Name string
	// Dir replaces Layout.DisksDir for the entry ("" = a disk that holds
	// no storage, such as swap).
	Dir string
	// MountPoint: Dir must be a mount of its own (an encrypted or zram
	// file system); if it is not, the entry fails rather than landing on
	// the disk below.
	MountPoint bool
}

// Target returns where volume or storage entry name of plat is mounted.
func (l Layout) Target(plat, name string) string {
	return filepath.Join(l.VolumesDir, plat, strings.TrimSuffix(name, "/"))
}

// ConfigOverlay returns the copied config overlay directory of plat.
func (l Layout) ConfigOverlay(plat string) string {
	return filepath.Join(l.ConfigsDir, plat)
}

// MountPlatform mounts everything p needs: its volumes (by extension), its
// storage entries, and the config overlay copy. On error everything already
// done is undone, so nothing is left half-mounted.
func MountPlatform(log *slog.Logger, l Layout, p Platform) (*Set, error) {
	s := NewSet(log)
	if err := mountPlatform(s, l, p); err != nil {
		if uerr := s.Unmount(); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, fmt.Errorf("mount platform %s: %w", p.Name, err)
	}
	return s, nil
}

func mountPlatform(s *Set, l Layout, p Platform) error {
	if err := validName("platform", p.Name); err != nil {
		return err
	}
	if strings.Contains(p.Name, "/") {
		return fmt.Errorf("platform %q: %w", p.Name, ErrBadName)
	}
	for _, v := range p.Volumes {
		if h, file, ok := strings.Cut(v, ":"); ok && h == "dm" {
			if err := validName("volume", file); err != nil {
				return err
			}
			m, ok := p.DM[file]
			if !ok {
				return fmt.Errorf("volume %q: %w: no inline %s/_dm/%s.json in the state", v, ErrVerity, p.Name, file)
			}
			// Mounted where the plain volume would be: pvr dm-convert leaves
			// lxc.container.conf's /volumes/<plat>/<file> as it is.
			if err := s.Verity(p.Dir, file, m, DMName(p.Rev, p.Name, file), l.Target(p.Name, file)); err != nil {
				return err
			}
			continue
		}
		if err := s.Volume(p.Dir, v, l.Target(p.Name, v)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(p.Storage))
	for n := range p.Storage {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		base := l.DisksDir
		if d, ok := p.StorageDisk[n]; ok {
			if d.Dir == "" {
				return fmt.Errorf("storage %q: disk %q: %w: it holds no storage", n, d.Name, ErrUnsupported)
			}
			if d.MountPoint && !isMountPoint(d.Dir) {
				return fmt.Errorf("storage %q: disk %q: %w: %s is not mounted", n, d.Name, ErrNotMounted, d.Dir)
			}
			base = d.Dir
		}
		if err := s.Storage(base, p.Rev, p.Name, n, p.Storage[n], l.Target(p.Name, n)); err != nil {
			return fmt.Errorf("storage %q: %w", n, err)
		}
	}
	if p.ConfigDir != "" {
		dst := l.ConfigOverlay(p.Name)
		if err := CopyConfig(p.ConfigDir, dst); err != nil {
			return err
		}
		s.add(kindDir, dst, "config overlay")
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount: it lies on
// another device than its parent.
func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// Volume mounts the volume named name (as written in run.json, relative to
// dir) on target, choosing the method from the extension: ".bind" binds the
// file, ".data" recursively binds the directory, anything else is a loop
// image whose extension is the file system type. A "<handler>:" prefix is
// not supported here: "dm:" volumes need their manifest (see Verity).
func (s *Set) Volume(dir, name, target string) error {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return fmt.Errorf("volume %q: %w: handler %q", name, ErrUnsupported, name[:i])
	}
	if err := validName("volume", name); err != nil {
		return err
	}
	src := filepath.Join(dir, name)
	var err error
	switch filepath.Ext(name) {
	case ".bind":
		err = s.Bind(src, target, false)
	case ".data":
		err = s.Data(src, target)
	default:
		err = s.Loop(src, target)
	}
	if err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	return nil
}
