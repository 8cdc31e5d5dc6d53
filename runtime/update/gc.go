package update

import (
	"fmt"
	"slices"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// GCPolicy is when and what the storage garbage collector may delete
// (spec §12); storage.GC does the deleting.
type GCPolicy struct {
	// KeepFactory is PV_STORAGE_GC_KEEP_FACTORY: revision 0 is kept.
	KeepFactory bool
	// Threshold is PV_STORAGE_GC_THRESHOLD: when the real free space
	// (free minus the PV_STORAGE_GC_RESERVED share, see
	// storage.Storage.ReservedPercent) falls below this percentage of the
	// total, Step runs the GC. 0 disables the check.
	Threshold int
	// DeferTime is PV_STORAGE_GC_THRESHOLD_DEFERTIME: the threshold
	// check is suspended this long after an object upload.
	DeferTime time.Duration
	// Usage reports the storage usage; nil uses Storage.Usage.
	Usage func() (storage.Usage, error)
}

// Keep returns what the GC must keep now: the running revision, the
// update in flight (or the boot loader's pv_try), the committed pv_rev,
// revision 0 with KeepFactory, and trails/current (storage keeps it).
func (u *Updater) Keep() storage.GCKeep {
	u.lock()
	defer u.unlock()
	k := storage.GCKeep{Running: u.running, Done: u.done, KeepFactory: u.o.GC.KeepFactory,
		Update: u.try}
	if d := u.upd; d != nil && d.phase != phaseFinal {
		k.Update = d.rev
		k.Objects = append(k.Objects, objectsOf(d)...)
	}
	k.Objects = append(k.Objects, u.held...)
	return k
}

// Hold keeps shas from the GC until the next Hold (nil: none): the
// objects of a remote update being downloaded, which no trail links
// before the revision is staged. Without it, the GC run to make room for
// one object (or by the threshold in WAIT) would delete the objects of
// the same update already downloaded.
func (u *Updater) Hold(shas []string) {
	u.lock()
	defer u.unlock()
	u.held = slices.Clone(shas)
}

func objectsOf(d *update) []string {
	if d.st == nil {
		return nil
	}
	var out []string
	for _, sha := range d.st.Objects() {
		out = append(out, sha)
	}
	return out
}

// GC runs the garbage collector with the keep rules of Keep and returns
// the bytes reclaimed (RUN_GC, /storage/gc, the threshold, a full disk).
// Storage asks Keep under its lock, so an install that starts meanwhile
// is either kept or has not written anything yet.
func (u *Updater) GC() (int64, error) {
	n, err := u.st.GC(u)
	if err != nil {
		return n, fmt.Errorf("gc: %w", err)
	}
	u.log.Info("gc", "reclaimed", n)
	return n, nil
}

// ObjectsUploaded notes an object upload (PUT /objects): the threshold
// check waits DeferTime from now.
func (u *Updater) ObjectsUploaded() {
	now := u.clock.Now()
	u.lock()
	u.lastUpload = now
	u.unlock()
}

// NeedGC reports whether the threshold check wants a GC now: a threshold
// is set, no upload happened within DeferTime, and the real free space is
// below Threshold percent of the total.
func (u *Updater) NeedGC() (bool, error) {
	pol := u.o.GC
	if pol.Threshold <= 0 {
		return false, nil
	}
	u.lock()
	last := u.lastUpload
	u.unlock()
	if !last.IsZero() && u.clock.Now().Before(last.Add(pol.DeferTime)) {
		return false, nil
	}
	usage := pol.Usage
	if usage == nil {
		usage = u.st.Usage
	}
	us, err := usage()
	if err != nil {
		return false, fmt.Errorf("storage usage: %w", err)
	}
	if us.Total == 0 {
		return false, nil
	}
	return us.RealFree*100 < uint64(pol.Threshold)*us.Total, nil
}

// checkGC is the WAIT threshold check.
func (u *Updater) checkGC() error {
	need, err := u.NeedGC()
	if err != nil || !need {
		return err
	}
	u.log.Info("gc: free space below threshold", "threshold", u.o.GC.Threshold)
	_, err = u.GC()
	return err
}
