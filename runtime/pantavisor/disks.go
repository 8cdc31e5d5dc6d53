package pantavisor

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/disk"
	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

// mediaDir is PV_SYSTEM_MEDIADIR; in App Engine its default moves below
// the run dir, to keep the host's /media alone.
func mediaDir(mode Mode, c *config.Config, runDir string) string {
	if mode == AppEngine && c.Source(config.SystemMediaDir) == config.Default {
		return filepath.Join(runDir, "media")
	}
	return c.Get(config.SystemMediaDir)
}

// mountDisks brings up the disks of st (device.json or disks.json) before
// its platforms mount their storage. Disks already up (a revision before
// a non-reboot transition) stay. A disk that fails stops the revision, as
// upstream: storage meant for an encrypted disk must not land elsewhere.
func (d *Daemon) mountDisks(st *state.State) error {
	dev := st.Device()
	if dev == nil || len(dev.Disks) == 0 {
		return nil
	}
	if d.disks == nil {
		d.disks = disk.NewSet(d.log, disk.Env{MediaDir: mediaDir(d.mode, d.conf, d.runDir)})
	}
	if err := d.disks.Mount(dev.Disks); err != nil {
		return fmt.Errorf("disks: %w", err)
	}
	if err := d.metaVolumes(dev); err != nil {
		return fmt.Errorf("disks: %w", err)
	}
	return nil
}

// closeDisks takes the disks down at shutdown (after the containers).
func (d *Daemon) closeDisks() {
	if d.disks == nil {
		return
	}
	if err := d.disks.Close(); err != nil {
		d.log.Warn("disks", "err", err)
	}
	d.disks = nil
}

// metaVolumes moves the metadata stores that device.json "volumes" put on
// a disk (pv--usrmeta, pv--devmeta) there: the volume's directory on the
// disk is bound over the store's cache dir and over its $RUN view, and
// the store reloads from it. On the first boot with the volume, the keys
// in the plain cache dir move onto the disk and leave the plain one. The
// other Pantavisor volumes are reported as not supported.
func (d *Daemon) metaVolumes(dev *state.Device) error {
	if dev == nil {
		return nil
	}
	for name, spec := range dev.Volumes {
		var s *metadata.Store
		var run string
		switch name {
		case "pv--usrmeta":
			s, run = d.usrmeta, filepath.Join(d.runDir, "user-meta")
		case "pv--devmeta":
			s, run = d.devmeta, filepath.Join(d.runDir, "device-meta")
		default:
			d.log.Warn("disks: Pantavisor volume not supported by this build, ignored", "volume", name, "disk", spec.Disk)
			continue
		}
		if s == nil || spec.Disk == "" || d.metaOn[name] {
			continue
		}
		dk := dev.Disk(spec.Disk)
		if dk == nil || (disk.MountsDir(dk) && (d.disks == nil || !d.disks.Up(dk.Name))) {
			return fmt.Errorf("volume %s: disk %q is not up", name, spec.Disk)
		}
		dir := volume.StorageSource(disk.Dir(dk, mediaDir(d.mode, d.conf, d.runDir)), d.rev, "bsp", name, volume.ParsePersistence(spec.Persistence))
		if dir == "" {
			return fmt.Errorf("volume %s: persistence %q: %w (a metadata volume must persist)", name, spec.Persistence, volume.ErrUnsupported)
		}
		if err := moveMeta(s.Dir(), dir); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		for _, target := range []string{s.Dir(), run} {
			if err := unix.Mount(dir, target, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("volume %s: bind %s on %s: %w", name, dir, target, err)
			}
			d.binds = append(d.binds, target)
		}
		onDisk, err := metadata.Open(s.Dir(), d.log)
		if err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		if err := s.Replace(onDisk.List()); err != nil {
			d.log.Warn("disks: reload metadata", "volume", name, "err", err)
		}
		if d.metaOn == nil {
			d.metaOn = map[string]bool{}
		}
		d.metaOn[name] = true
		d.log.Info("disks: metadata on disk", "volume", name, "disk", dk.Name, "dir", dir)
	}
	return nil
}

// moveMeta moves the key files of plain into dir when dir is new (the
// first boot with the volume); an existing dir is the truth and plain's
// files are left for the bind mount to hide.
func moveMeta(plain, dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(plain)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(plain, e.Name()))
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(plain, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
