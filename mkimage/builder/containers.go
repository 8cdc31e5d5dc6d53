package builder

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/container"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// busyboxPackage provides the static busybox of the default containers.
const busyboxPackage = "busybox-static"

// ntpPackages give the network template its time sync: toybox's sntp and
// the libraries it links (Debian's busybox-static has no ntpd).
var ntpPackages = []string{"toybox", "libc6", "libcrypt1"}

// needsNTP tells whether the build makes a network template container.
func (b *run) needsNTP() bool {
	if b.o.MergeSrc != "" {
		return false
	}
	for _, c := range b.r.Containers {
		if c.Template == container.Network {
			return true
		}
	}
	return false
}

// wifiPackages give a network template with wifi = true its
// wpa_supplicant: the program and the libraries it links, transitively
// (Debian bookworm's names; libdbus brings libsystemd and its own; the ELF
// walker copies only what is linked, and fails on a missing one).
var wifiPackages = []string{"wpasupplicant", "libc6", "libdbus-1-3", "libnl-3-200", "libnl-genl-3-200", "libnl-route-3-200",
	"libpcsclite1", "libssl3", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1", "liblzma5", "libzstd1"}

// needsWifi tells whether the build makes a network template with Wi-Fi.
func (b *run) needsWifi() bool {
	if b.o.MergeSrc != "" {
		return false
	}
	for _, c := range b.r.Containers {
		if c.Template == container.Network && c.Wifi {
			return true
		}
	}
	return false
}

// needsBusybox tells whether the build makes template containers.
func (b *run) needsBusybox() bool {
	if b.o.MergeSrc != "" {
		return false
	}
	for _, c := range b.r.Containers {
		if c.Template != "" {
			return true
		}
	}
	return false
}

// makeContainers returns the platform entries of trails/0: the reference
// device's (Options.MergeSrc, replacing the recipe's containers) or the
// recipe's templates and sources. The note lists what was merged.
func (b *run) makeContainers(ctx context.Context, pk *packages, bin *binaries) (container.Entries, string, error) {
	all := container.NewEntries()
	work := filepath.Join(b.work, "containers")
	if b.o.MergeSrc != "" {
		e, err := container.LoadSource(b.o.MergeSrc, filepath.Join(work, "merge-src"))
		if err != nil {
			return all, "", err
		}
		return e, fmt.Sprintf("merged %d keys from %s", len(e.Keys()), b.o.MergeSrc), all.Merge(e)
	}
	// Each container is made in its own work directory, side by side:
	// a squashfs of a few MiB keeps mksquashfs on one CPU for most of its
	// run. They are merged in the recipe's order.
	ents := make([]container.Entries, len(b.r.Containers))
	errs := make([]error, len(b.r.Containers))
	var wg sync.WaitGroup
	for i, c := range b.r.Containers {
		build := func() {
			switch {
			case c.Source != "":
				ents[i], errs[i] = container.LoadSource(b.repoFile(c.Source), filepath.Join(work, "src-"+c.Name))
			case c.Image != "":
				var a arch.Arch
				if a, errs[i] = arch.Lookup(b.r.Arch); errs[i] == nil {
					ents[i], errs[i] = app.Build(ctx, filepath.Join(work, "image"), c.Name, c.Image, b.o.Repo, c.Args,
						app.Options{Platform: a.OCIPlatform(), Epoch: b.o.Epoch, Comp: b.r.ContainerCompression})
				}
			default:
				s := container.Spec{Name: c.Name, Template: c.Template, Busybox: pk.Busybox, NTPRoot: pk.NTPRoot,
					Pvcontrol: bin.StaticPvcontrol, Pvcurl: bin.StaticPvcurl, PvrSDK: bin.StaticPvrSDK, Work: work, Epoch: b.o.Epoch, Comp: b.r.ContainerCompression, Cache: filepath.Join(b.o.Cache, "artifacts"), Made: b.describeSquashfs,
					CPUs: func(ctx context.Context) (int, func(), error) { return b.take(ctx, "containers") }}
				if c.Wifi {
					s.WifiRoot = pk.WifiRoot
				}
				ents[i], errs[i] = container.Build(ctx, s)
			}
			if errs[i] == nil && b.r.Verity(c) {
				errs[i] = container.Verity(ents[i], c.Name, "root.squashfs")
			}
		}
		if c.Image != "" {
			build() // images share work/image (app.Build): one at a time
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); build() }()
	}
	wg.Wait()
	var names []string
	for i, c := range b.r.Containers {
		if errs[i] != nil {
			return all, "", fmt.Errorf("container %s: %w", c.Name, errs[i])
		}
		if err := all.Merge(ents[i]); err != nil {
			return all, "", err
		}
		kind := c.Template + c.Source + c.Image
		if b.r.Verity(c) {
			kind += ",dm-verity"
		}
		names = append(names, c.Name+"("+kind+")")
	}
	return all, strings.Join(names, " "), nil
}

// addEntries adds container entries to a revision.
func addEntries(rev *trail.Revision, e container.Entries) error {
	for k, p := range e.Objects {
		if err := rev.AddObject(k, p); err != nil {
			return err
		}
	}
	for k, v := range e.Inline {
		if err := rev.AddJSON(k, v); err != nil {
			return err
		}
	}
	return nil
}
