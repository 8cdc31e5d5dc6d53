// Package disk brings up the disks of device.json ("disks", "disks_v2",
// "disks_v3") or disks.json: plain directories, dm-crypt-versatile images
// (a loop device under a device-mapper crypt target, the key made on first
// boot and kept beside the image, as upstream's volmount crypt script
// does), and zram swap and volume disks. Platform storage and Pantavisor's
// own volumes (pv--usrmeta, …) that name a disk live below its [Dir].
//
// Usage:
//
//	set := disk.NewSet(log, disk.Env{MediaDir: "/media"})
//	err := set.Mount(st.Device().Disks) // idempotent; the first failure stops
//	dir := disk.Dir(d, "/media")         // where storage on d goes
//	err = set.Close()                    // unmount, remove, swapoff
//
// dm-crypt-caam and dm-crypt-dcp need i.MX key hardware and its tools;
// they are refused with ErrUnsupported, as are "dual" disks.
package disk

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrUnsupported is returned for disk types this build cannot bring up.
var ErrUnsupported = errors.New("not supported")

// ErrBadDisk is returned for a disk definition that cannot work.
var ErrBadDisk = errors.New("invalid disk")

// Env is where disks go.
type Env struct {
	// MediaDir is PV_SYSTEM_MEDIADIR: crypt disks mount on
	// <MediaDir>/pv/dmcrypt/<name>.
	MediaDir string
	// DevDir is /dev ("" = /dev); tests keep it.
	DevDir string
}

// Dir is where storage on disk d lives: the directory of a directory
// disk, the mount point of a crypt or volume disk, "" for swap.
func Dir(d *state.Disk, mediaDir string) string {
	switch d.Type {
	case "directory":
		return filepath.Clean(d.Path)
	case "swap-disk":
		return ""
	case "volume-disk":
		if d.MountTarget != "" {
			return filepath.Clean(d.MountTarget)
		}
	}
	return filepath.Join(mediaDir, "pv", "dmcrypt", d.Name)
}

// MountsDir reports whether Dir(d) must be a mount point of its own (an
// encrypted or zram file system): storage is never put on the disk below
// when it is not.
func MountsDir(d *state.Disk) bool { return d.Type != "directory" && d.Type != "swap-disk" }

// Set is the disks brought up by one daemon; its methods may be called
// from any goroutine (a mutex guards the list; bringing a disk up is not
// done under it twice, as Mount is meant for the one state goroutine).
type Set struct {
	log *slog.Logger
	env Env

	mu  sync.Mutex
	up  map[string]*mounted // by disk name
	ops sync.Mutex          // serialises Mount and Close
}

// mounted is a disk that is up and how to take it down.
type mounted struct {
	name string
	down func() error
}

// NewSet returns an empty set.
func NewSet(log *slog.Logger, env Env) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if env.DevDir == "" {
		env.DevDir = "/dev"
	}
	return &Set{log: log, env: env, up: map[string]*mounted{}}
}

// Mount brings up every disk of disks not up yet, in order, and stops at
// the first failure.
func (s *Set) Mount(disks []state.Disk) error {
	s.ops.Lock()
	defer s.ops.Unlock()
	for i := range disks {
		d := &disks[i]
		s.mu.Lock()
		_, done := s.up[d.Name]
		s.mu.Unlock()
		if done {
			continue
		}
		m, err := s.bringUp(d)
		if err != nil {
			return fmt.Errorf("disk %s (%s): %w", d.Name, d.Type, err)
		}
		s.log.Info("disk up", "disk", d.Name, "type", d.Type, "dir", Dir(d, s.env.MediaDir))
		s.mu.Lock()
		s.up[d.Name] = m
		s.mu.Unlock()
	}
	return nil
}

// Up reports whether disk name is up.
func (s *Set) Up(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.up[name]
	return ok
}

func (s *Set) bringUp(d *state.Disk) (*mounted, error) {
	switch d.Type {
	case "directory":
		return s.directory(d)
	case "dm-crypt-versatile":
		return s.cryptVersatile(d)
	case "dm-crypt-caam":
		return nil, hardwareMissing(d, "i.MX CAAM", "/dev/caam-keygen", s.env.DevDir)
	case "dm-crypt-dcp":
		return nil, hardwareMissing(d, "i.MX DCP", "/dev/dcp", s.env.DevDir)
	case "swap-disk", "volume-disk":
		if d.Provision != "zram" {
			return nil, fmt.Errorf("provision %q: %w (only zram)", d.Provision, ErrUnsupported)
		}
		if d.Type == "swap-disk" {
			return s.zramSwap(d)
		}
		return s.zramVolume(d)
	}
	return nil, fmt.Errorf("type %q: %w", d.Type, ErrUnsupported)
}

// Close takes every disk down, the last brought up first.
func (s *Set) Close() error {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	ups := make([]*mounted, 0, len(s.up))
	for _, m := range s.up {
		ups = append(ups, m)
	}
	s.up = map[string]*mounted{}
	s.mu.Unlock()
	var errs []error
	for _, m := range ups {
		if err := m.down(); err != nil {
			errs = append(errs, fmt.Errorf("disk %s: %w", m.name, err))
		}
	}
	return errors.Join(errs...)
}

// CryptPath is the "path" of a dm-crypt disk: "<image>,<size MiB>,<key>".
type CryptPath struct {
	Image  string
	SizeMB int
	Key    string
}

// ParseCryptPath reads "<image>,<size MiB>,<key name>". The key name is a
// file name in the image's directory.
func ParseCryptPath(p string) (CryptPath, error) {
	parts := strings.Split(p, ",")
	if len(parts) != 3 {
		return CryptPath{}, fmt.Errorf("path %q: %w: want <image>,<size MiB>,<key>", p, ErrBadDisk)
	}
	img, size, key := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2])
	n, err := strconv.Atoi(size)
	if err != nil || n <= 0 || n > 1<<20 {
		return CryptPath{}, fmt.Errorf("path %q: %w: size %q is not a number of MiB", p, ErrBadDisk, size)
	}
	if !filepath.IsAbs(img) || filepath.Clean(img) != img || strings.HasSuffix(img, "/") {
		return CryptPath{}, fmt.Errorf("path %q: %w: image %q is not a clean absolute path", p, ErrBadDisk, img)
	}
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\x00") {
		return CryptPath{}, fmt.Errorf("path %q: %w: key %q is not a file name", p, ErrBadDisk, key)
	}
	return CryptPath{Image: img, SizeMB: n, Key: key}, nil
}

// DeviceName is the device-mapper name: the image's base name without its
// extension, as upstream.
func (c CryptPath) DeviceName() string {
	b := filepath.Base(c.Image)
	if i := strings.IndexByte(b, '.'); i > 0 {
		b = b[:i]
	}
	return b
}

// ProvisionOps reads "key=value" pairs separated by commas or spaces
// (provision_ops: "disksize=128M,comp_algorithm=lz4").
func ProvisionOps(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("provision_ops %q: %w: %q is not key=value", s, ErrBadDisk, f)
		}
		out[k] = v
	}
	return out, nil
}

// validSize accepts what the kernel's memparse takes for a zram size: a
// number with an optional K, M or G.
func validSize(s string) bool {
	if s == "" {
		return false
	}
	n := strings.TrimRight(s, "KMGkmg")
	if len(s)-len(n) > 1 || n == "" {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 64)
	return err == nil
}

// mountFlags maps mount_options items, as upstream's MS_* names or as
// mount(8) words, to mount flags.
var mountFlags = map[string]uintptr{
	"MS_RDONLY": 0x1, "ro": 0x1,
	"MS_NOSUID": 0x2, "nosuid": 0x2,
	"MS_NODEV": 0x4, "nodev": 0x4,
	"MS_NOEXEC": 0x8, "noexec": 0x8,
	"MS_SYNCHRONOUS": 0x10, "sync": 0x10,
	"MS_DIRSYNC": 0x80, "dirsync": 0x80,
	"MS_NOATIME": 0x400, "noatime": 0x400,
	"MS_NODIRATIME": 0x800, "nodiratime": 0x800,
	"MS_RELATIME": 0x200000, "relatime": 0x200000,
	"MS_STRICTATIME": 0x1000000, "strictatime": 0x1000000,
	"MS_LAZYTIME": 0x2000000, "lazytime": 0x2000000,
	"rw": 0, "defaults": 0,
}

// MountOptions turns "MS_NOATIME,MS_NOSUID" (or "noatime,nosuid") into
// mount flags; anything else is an error.
func MountOptions(s string) (uintptr, error) {
	var fl uintptr
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, ok := mountFlags[f]
		if !ok {
			return 0, fmt.Errorf("mount_options %q: %w: unknown flag %q", s, ErrBadDisk, f)
		}
		fl |= v
	}
	return fl, nil
}
