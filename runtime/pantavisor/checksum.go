package pantavisor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// checksumSkipped are the objects RUN does not hash: the FIT image's
// source, which nothing on the device reads.
func checksumSkipped(name string) bool {
	return name == "bsp/fit-image.its"
}

// lateObjects returns the state keys of b's objects that RUN verifies
// beside the container start instead of before it (lateCheck): what the
// boot loader loaded already (kernel, initrds, device trees, FIT, boot
// image) and the kernel modules images, which only the coldplug, the
// kernel's module requests and the managed drivers read, and each of them
// waits for it. A key that names a directory covers the files under it.
func lateObjects(b *state.BSP) (boot, modules []string) {
	if b == nil {
		return nil, nil
	}
	for _, f := range append([]string{b.Linux, b.Initrd, b.Fdt, b.Fit, b.Rpiab}, b.Addons...) {
		if f != "" {
			boot = append(boot, "bsp/"+f)
		}
	}
	if b.Modules != "" {
		modules = append(modules, "bsp/"+b.Modules)
	}
	for _, f := range b.ModulesByRelease {
		modules = append(modules, "bsp/"+f)
	}
	return boot, modules
}

// covers reports whether object name is one of keys or under one.
func covers(keys []string, name string) bool {
	for _, k := range keys {
		if name == k || strings.HasPrefix(name, k+"/") {
			return true
		}
	}
	return false
}

// checkedObject is one file RUN verifies: the state key, its sha and the
// file Pantavisor will use (the trail's link, or the object itself).
type checkedObject struct{ name, sha, path string }

// revisionObjects returns the objects of st that RUN verifies, one per
// file (links of one inode count once), in key order: every object but
// the skipped ones and the data file of a "<handler>:" volume (dm-verity
// checks its blocks as they are read). The hash device stays verified
// here (a small file); the _dm manifest with the root hash is inline
// JSON, covered by the state's signature.
func (d *Daemon) revisionObjects(rev string, st *state.State) []checkedObject {
	handled := map[string]bool{}
	for _, p := range st.Platforms() {
		for _, ref := range append([]string{p.RootVolume}, p.Volumes...) {
			if file, h := state.VolumeFile(ref); h != "" {
				handled[p.Dir+"/"+file] = true
			}
		}
	}
	objs := st.Objects()
	names := make([]string, 0, len(objs))
	for name := range objs {
		if !checksumSkipped(name) && !handled[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	trail := d.store.TrailDir(rev)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var out []checkedObject
	for _, name := range names {
		sha := objs[name]
		path := filepath.Join(trail, filepath.FromSlash(name))
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil {
			path = d.store.ObjectPath(sha)
			if unix.Stat(path, &st) != nil {
				out = append(out, checkedObject{name, sha, path}) // missing: reported by the check
				continue
			}
		}
		k := inode{uint64(st.Dev), uint64(st.Ino)}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, checkedObject{name, sha, path})
	}
	return out
}

// checksumOn reports whether RUN verifies objects at all, logging it
// when it does not.
func (d *Daemon) checksumOn() bool {
	if !d.conf.Bool(config.SecurebootChecksum) || d.quickboot() {
		d.log.Info("checksum: objects not verified", "PV_SECUREBOOT_CHECKSUM", d.conf.Get(config.SecurebootChecksum), "pv_quickboot", d.quickboot())
		return false
	}
	return true
}

// checkObjects re-hashes the running revision's objects (spec §1 RUN 4,
// PV_SECUREBOOT_CHECKSUM): storage that rotted or was tampered with
// since the update fails the revision, which rolls back, rather than
// running corrupt code. The objects that gate what RUN starts (the
// containers', firmware, anything mounted before the containers start)
// are hashed here, before any is used; the lateObjects are handed to the
// returned lateCheck (nil when there are none or checksums are off),
// which the caller starts.
func (d *Daemon) checkObjects(rev string, st *state.State) (*lateCheck, error) {
	if !d.checksumOn() {
		return nil, nil
	}
	boot, mods := lateObjects(st.BSP())
	var now, lateBoot, lateMods []checkedObject
	for _, o := range d.revisionObjects(rev, st) {
		switch {
		case covers(mods, o.name):
			lateMods = append(lateMods, o)
		case covers(boot, o.name):
			lateBoot = append(lateBoot, o)
		default:
			now = append(now, o)
		}
	}
	start := time.Now()
	bytes, err := verifyObjects(now, true)
	if err != nil {
		return nil, err
	}
	d.log.Info("checksum: objects verified", "bytes", bytes, "took", time.Since(start).Round(time.Millisecond))
	if len(lateBoot)+len(lateMods) == 0 {
		return nil, nil
	}
	return newLateCheck(lateMods, lateBoot), nil
}

// verifyObjects hashes objs in turn and returns how many bytes it read,
// or the first mismatch. mapped hashes through mappings (the fastest
// way, for RUN while nothing else runs); otherwise the files are read:
// a page fault on a mapping holds the process's mmap lock, which a
// fork or the Go heap's growth in another thread of PID 1 then waits
// for behind a thread of the lowest priority.
func verifyObjects(objs []checkedObject, mapped bool) (int64, error) {
	var bytes int64
	for _, o := range objs {
		var n int64
		err := errNoMap
		if mapped {
			n, err = verifyMapped(o.path, o.sha)
		}
		if errors.Is(err, errNoMap) {
			n, err = verifyRead(o.path, o.sha)
		}
		if err != nil {
			return bytes, fmt.Errorf("checksum: %s: %w", o.name, err)
		}
		bytes += n
	}
	return bytes, nil
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

// verifyRead hashes the file at path by reading it (files verifyMapped
// cannot map). It returns the size.
func verifyRead(path, sha string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("verify object %s: %w", sha, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 256<<10))
	if err != nil {
		return n, fmt.Errorf("verify object %s: %w", sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return n, fmt.Errorf("verify object %s: content hashes to %s: %w", sha, got, storage.ErrBadChecksum)
	}
	return n, nil
}
