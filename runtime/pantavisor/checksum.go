package pantavisor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
	"golang.org/x/sys/unix"
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
		n, err := verifyMapped(d.store.ObjectPath(sha), sha)
		if errors.Is(err, errNoMap) {
			err = d.store.VerifyObject(sha)
		}
		if err != nil {
			return fmt.Errorf("checksum: %w", err)
		}
		bytes += n
	}
	took := time.Since(start)
	d.log.Info("checksum: objects verified", "bytes", bytes, "took", took.Round(time.Millisecond))
	return nil
}

// errNoMap: the object could not be mapped (too large for the address
// space of a 32-bit device, a file system without mmap); the caller
// reads it instead.
var errNoMap = errors.New("cannot map")

// maxMap bounds one mapping; a larger object is read.
const maxMap = 1 << 30

// verifyMapped hashes the object at path through a read-only mapping:
// no copy out of the page cache, so the check runs at the speed of
// sha256 itself (BenchmarkChecksumRevision). It returns the size.
func verifyMapped(path, sha string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("verify object %s: %w", sha, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("verify object %s: %w", sha, err)
	}
	size := fi.Size()
	if size == 0 || size > maxMap || int64(int(size)) != size {
		return size, errNoMap
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return size, errNoMap
	}
	defer unix.Munmap(m)
	unix.Madvise(m, unix.MADV_SEQUENTIAL)
	sum, err := sumMapped(m)
	if err != nil {
		return size, fmt.Errorf("verify object %s: %w", sha, err)
	}
	if got := hex.EncodeToString(sum[:]); got != sha {
		return size, fmt.Errorf("verify object %s: content hashes to %s: %w", sha, got, storage.ErrBadChecksum)
	}
	return size, nil
}

// sumMapped hashes a mapping. A read error of the storage under it (the
// rot this check is for) or a file cut short arrives as SIGBUS, which
// would kill PID 1: it is turned into an error instead.
func sumMapped(m []byte) (sum [sha256.Size]byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read fault: %v", r)
		}
	}()
	return sha256.Sum256(m), nil
}
