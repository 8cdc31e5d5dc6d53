package bootloader

// Choice is what a boot script decides from the env.
type Choice struct {
	Boot   string // revision to boot
	Trying string // new value of the volatile pv_trying latch
}

// Choose is the revision selection every Pantavisor boot script implements
// (U-Boot boot.scr, grub.cfg, the App Engine boot loop):
//
//   - pv_try set and not yet tried: latch pv_trying=pv_try and boot it;
//   - pv_try set and already tried (the try did not commit): clear the
//     latch and boot pv_rev, which rolls back;
//   - otherwise boot pv_rev ("0" when unset) and clear the latch: with no
//     try pending it means nothing, and a stale one (a try that failed
//     without a reboot, then had pv_try cleared) would make a later retry
//     of the same revision roll back without ever booting it.
func Choose(rev, try, trying string) Choice {
	if rev == "" {
		rev = "0"
	}
	switch {
	case try == "":
		return Choice{Boot: rev, Trying: ""}
	case trying == try:
		return Choice{Boot: rev, Trying: ""}
	default:
		return Choice{Boot: try, Trying: try}
	}
}
