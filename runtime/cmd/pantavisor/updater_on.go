//go:build pvupdate

package main

import "github.com/pantavisor/pantavisor-go/runtime/pantavisor/updater"

// newUpdater runs updates (runtime/update). It links runtime/bootloader,
// which pulls go-diskfs (rpiab) and so breaks TestDeps until that is
// split off: build with -tags pvupdate to get updates meanwhile.
var newUpdater = updater.New
