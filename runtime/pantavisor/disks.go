package pantavisor

import (
	"fmt"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/disk"
	"github.com/pantavisor/pantavisor-go/runtime/state"
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
