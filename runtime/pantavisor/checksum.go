package pantavisor

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// quickboot reports upstream's pv_quickboot: set in the environment (the
// kernel hands unknown command-line words to init as such) or on the
// command line, it skips the boot-time checksums.
func (d *Daemon) quickboot() bool {
	for _, kv := range d.opt.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "pv_quickboot" {
			return true
		}
	}
	for _, w := range strings.Fields(d.opt.Cmdline) {
		if k, _, _ := strings.Cut(w, "="); k == "pv_quickboot" {
			return true
		}
	}
	return false
}

// checksumSkipped are the objects RUN does not re-hash: the boot loader
// loaded them already (Pantavisor itself, the kernel, the FIT source),
// so a bad one could not be refused any more.
func checksumSkipped(name string) bool {
	return strings.HasPrefix(name, "bsp/pantavisor") || name == "bsp/kernel.img" || name == "bsp/fit-image.its"
}

// revisionObjects returns the distinct objects of st that RUN verifies,
// sorted by sha: every object but the skipped ones and the images of a
// "<handler>:" volume (a dm-verity handler checks them as they are read).
func revisionObjects(st *state.State) []string {
	handled := map[string]bool{}
	for _, p := range st.Platforms() {
		for _, ref := range append([]string{p.RootVolume}, p.Volumes...) {
			if file, h := state.VolumeFile(ref); h != "" {
				handled[p.Dir+"/"+file] = true
			}
		}
	}
	seen := map[string]bool{}
	var out []string
	for name, sha := range st.Objects() {
		if checksumSkipped(name) || handled[name] || seen[sha] {
			continue
		}
		seen[sha] = true
		out = append(out, sha)
	}
	sort.Strings(out)
	return out
}

// checkObjects re-hashes the running revision's objects before any of
// them is used (spec §1 RUN 4, PV_SECUREBOOT_CHECKSUM): storage that
// rotted or was tampered with since the update fails the revision, which
// rolls back, rather than running corrupt code.
func (d *Daemon) checkObjects(st *state.State) error {
	if !d.conf.Bool(config.SecurebootChecksum) || d.quickboot() {
		d.log.Info("checksum: objects not verified", "PV_SECUREBOOT_CHECKSUM", d.conf.Get(config.SecurebootChecksum), "pv_quickboot", d.quickboot())
		return nil
	}
	start := time.Now()
	var bytes int64
	for _, sha := range revisionObjects(st) {
		if err := d.store.VerifyObject(sha); err != nil {
			return fmt.Errorf("checksum: %w", err)
		}
		if fi, err := os.Stat(d.store.ObjectPath(sha)); err == nil {
			bytes += fi.Size()
		}
	}
	took := time.Since(start)
	d.log.Info("checksum: objects verified", "bytes", bytes, "took", took.Round(time.Millisecond))
	return nil
}
