package boottest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// TestDriversLoadEarly boots the image with
// PV_SYSTEM_DRIVERS_LOAD_EARLY_AUTO=1 on the kernel command line
// (pv_system.drivers.load_early.auto=1 in grub.cfg): the early coldplug
// from the initrd's modules (and the storage file system's module) runs
// before the storage partition is mounted, and the boot goes on to
// READY. Without the key no early coldplug happens (the other boot tests
// never see its line).
func TestDriversLoadEarly(t *testing.T) {
	img, _ := image(t)
	if os.Getenv("PV_TEST_MARKER") == "" {
		t.Skip("early drivers need the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	if imageRecipe(t).Bootloader.Type != recipe.BootGrub {
		t.Skip("edits grub.cfg")
	}
	wdtArgs(t, img, "pv_system.drivers.load_early.auto=1")
	const (
		early   = "kmod: early coldplug loaded "
		storage = "EXT4-fs (vda3): mounted"
	)
	res, err := Boot(context.Background(), Options{Image: img, Firmware: BIOS, Timeout: 10 * time.Minute,
		Marker: "rev=0 status=READY", Expect: []string{early, storage}})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
	}
	if res.Seen[early] > res.Seen[storage] {
		t.Errorf("early coldplug at %s, after the storage mount at %s", res.Seen[early], res.Seen[storage])
	}
}
