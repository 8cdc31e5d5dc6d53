package pantavisor

import "github.com/pantavisor/pantavisor-go/runtime/config"

// deferGC suspends the GC threshold for PV_STORAGE_GC_THRESHOLD_DEFERTIME
// after an object upload, so objects of a revision being assembled through
// the control socket are not collected before its state JSON arrives.
func (d *Daemon) deferGC() {
	until := d.clock.Now().Add(d.conf.Duration(config.StorageGCThresholdDeferTime))
	d.mu.Lock()
	if until.After(d.gcDeferred) {
		d.gcDeferred = until
	}
	d.mu.Unlock()
}

// gcThreshold is the WAIT check of spec §12: run GC when the real free
// space (free minus the reserve) drops below PV_STORAGE_GC_THRESHOLD % of
// the total, unless uploads deferred it.
func (d *Daemon) gcThreshold() {
	pct := d.conf.Int(config.StorageGCThreshold)
	if pct <= 0 {
		return
	}
	d.mu.Lock()
	deferred := d.clock.Now().Before(d.gcDeferred)
	d.mu.Unlock()
	if deferred {
		return
	}
	u, err := d.store.Usage()
	if err != nil || u.Total == 0 {
		return
	}
	if u.RealFree*100/u.Total >= uint64(pct) {
		return
	}
	n, err := d.store.GC(d.gcKeep())
	if err != nil {
		d.log.Error("gc threshold", "err", err)
		return
	}
	d.log.Info("gc threshold", "threshold", pct, "reclaimed", n)
}
