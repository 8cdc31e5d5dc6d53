package volume

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/runtime/dmverity"
	"github.com/pantavisor/pantavisor-go/runtime/internal/devmapper"
	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

// ErrVerity is wrapped by the errors of a "dm:" volume whose manifest,
// hash device or data file do not fit together.
var ErrVerity = errors.New("dm-verity volume")

// devDir is where the device-mapper control node and device nodes are.
var devDir = "/dev"

// DMName returns the device-mapper name of volume file of platform plat in
// revision rev: readable, unique per (rev, plat, file) through a digest of
// the three, and made of safe characters only whatever the state holds.
func DMName(rev, plat, file string) string {
	sum := sha256.Sum256([]byte(rev + "\x00" + plat + "\x00" + file))
	safe := []byte("pv-" + plat + "-" + file)
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			safe[i] = '_'
		}
	}
	if len(safe) > 80 {
		safe = safe[:80]
	}
	return fmt.Sprintf("%s-%x", safe, sum[:8])
}

// Verity mounts the "dm:<file>" volume of dir on target through a
// dm-verity device named devName: manifest is the platform's
// "_dm/<file>.json" from the signed state, which names the data and hash
// files (both in dir) and carries the root hash. The kernel then checks
// every block as it is read: a block that does not hash to the tree fails
// with EIO, a wrong root hash fails the mount.
func (s *Set) Verity(dir, file string, manifest []byte, devName, target string) error {
	if err := s.verity(dir, file, manifest, devName, target); err != nil {
		return fmt.Errorf("volume %q: %w", "dm:"+file, err)
	}
	return nil
}

func (s *Set) verity(dir, file string, manifest []byte, devName, target string) error {
	m, err := dmverity.ParseManifest(manifest)
	if err != nil {
		return fmt.Errorf("%w: _dm/%s.json: %w", ErrVerity, file, err)
	}
	if m.DataDevice != file {
		return fmt.Errorf("%w: _dm/%s.json: data_device %q is not the volume", ErrVerity, file, m.DataDevice)
	}
	root, _ := m.Root()
	data := filepath.Join(dir, m.DataDevice)
	hash := filepath.Join(dir, m.HashDevice)
	sb, err := dmverity.ReadSuperblock(hash)
	if err != nil {
		return fmt.Errorf("%w: hash device: %w", ErrVerity, err)
	}
	if len(root) != sb.DigestSize() {
		return fmt.Errorf("%w: root_hash of %d bytes, %s digests are %d", ErrVerity, len(root), sb.Algorithm, sb.DigestSize())
	}
	fi, err := os.Stat(data)
	if err != nil {
		return fmt.Errorf("data device: %w", err)
	}
	if uint64(fi.Size()) < sb.DataSize() {
		return fmt.Errorf("%w: %s has %d bytes, the hash tree covers %d", ErrVerity, m.DataDevice, fi.Size(), sb.DataSize())
	}
	fstype := strings.TrimPrefix(filepath.Ext(file), ".")
	if fstype == "" {
		return fmt.Errorf("%w: no extension to tell its file system", ErrUnsupported)
	}
	if fstype == "squashfs" {
		if err := CheckSquashfs(data); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if _, err := os.Stat("/sys/module/dm_verity"); err != nil {
		// A module on most kernels (it pulls dm_mod in); quiet when
		// built in, and a missing one shows as the table load's error.
		_ = kmod.Modprobe(context.Background(), []string{"-q", "dm_verity"}, nil, io.Discard, io.Discard)
	}
	// Both loops clear themselves once the verity target lets them go.
	dloop, err := attachLoop(data, true)
	if err != nil {
		return err
	}
	defer dloop.Close()
	hloop, err := attachLoop(hash, true)
	if err != nil {
		return err
	}
	defer hloop.Close()
	table := sb.Table(devNum(dloop), devNum(hloop), root)
	devno, err := devmapper.Create(devDir, devName, devmapper.Target{Length: sb.DataSize() / 512, Type: "verity", Params: table, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrVerity, err)
	}
	node, err := devmapper.Node(devDir, devName, devno)
	if err == nil {
		if err = unix.Mount(node, target, fstype, unix.MS_RDONLY, ""); err != nil {
			err = mountErr(node+" ("+file+", dm-verity)", target, err)
		}
	}
	if err != nil {
		if rerr := removeDM(devName); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	// Undone in reverse: the mount, then the device.
	s.add(kindDM, devName, "verity "+table)
	s.add(kindMount, target, fstype+" "+node+" dm-verity "+data)
	return nil
}

// devNum is the "major:minor" of an open block device.
func devNum(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return f.Name() // the kernel takes a path as well
	}
	return fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
}

// removeDM removes device-mapper device name, waiting a little while the
// last opener (udev, a reader of the unmounted file system) lets it go.
func removeDM(name string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = devmapper.Remove(devDir, name); err == nil || errors.Is(err, unix.ENXIO) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}
