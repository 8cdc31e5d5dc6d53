// Package boot is the registry of boot layouts: one entry per boot loader
// (recipe bootloader.type) that knows everything the image builder must
// do for it. An entry validates its part of the recipe, says what the
// boot loader's initial state on the storage is, and plans the boot files
// of the image: the files of its FAT partitions, selected by name, and its
// raw regions (boot code in the MBR, a U-Boot SPL at a fixed offset). The
// image assembly (builder.makeImage) stays generic: it creates the
// partition table and the storage file system, then writes what the plan
// makes.
//
//	l, err := boot.Lookup(r)                  // validated for r
//	state, err := l.State()                   // {"boot/grubenv": ...}
//	p, err := l.Plan(boot.Input{Recipe: r, Disk: d, Repo: repo})
//	files, err := p.Make(ctx)                 // when p.Key etc. changed
//
// Adding a boot loader is one entry in layouts and its file here.
package boot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// Layout is one boot loader's part of an image.
type Layout interface {
	// Validate checks the recipe's bootloader section and the partitions
	// this boot loader needs; errors wrap recipe.ErrInvalid and name the
	// recipe key.
	Validate(r *recipe.Recipe) error
	// State is the boot loader's initial state on the storage: files by
	// path relative to the storage root (boot/grubenv holding pv_rev=0).
	State() (map[string][]byte, error)
	// Plan describes the image's boot files for a validated recipe.
	Plan(in Input) (*Plan, error)
}

// Input is what a layout plans from.
type Input struct {
	Recipe *recipe.Recipe
	// Disk is the placed partition table of the image.
	Disk disk.Layout
	// Repo is the repository root (bootloader/<type>/ holds the boot
	// loader's templates).
	Repo string
	// Boot is the directory of the boot files the bsp stage made for
	// this layout (rpiab: pantavisor-rpi.img and bootcode.bin).
	Boot string
}

// Plan is a layout's part of one image: what it is made from, for the
// image's cache key, and how to make it.
type Plan struct {
	// Key describes every input that Tools and Dirs do not: the
	// generated configurations, the platforms, the partition names.
	Key []byte
	// Tools are the host programs Make runs and Dirs the host
	// directories it reads; the builder identifies them by content.
	Tools, Dirs []string
	// Make produces the boot files.
	Make func(ctx context.Context) (*Files, error)
}

// Files are the boot files of an image.
type Files struct {
	// Partitions maps the name of a FAT partition to the files it holds
	// (absolute path → content); each is formatted and filled.
	Partitions map[string]map[string][]byte
	// Images maps the name of a FAT partition to a host file holding a
	// whole file system image, written at the partition's start (rpiab's
	// boot_a and boot_b, byte for byte the BSP's image).
	Images map[string]string
	// Raw are byte ranges written as they are (disk.Layout.CheckRegions
	// keeps them off the partition table and the file systems).
	Raw []disk.Region
}

// ErrNotImplemented is returned by the Plan of a boot loader whose image
// assembly does not exist yet; its recipes validate and build up to the
// storage tree (-until trails/0).
var ErrNotImplemented = errors.New("image assembly not implemented")

// layouts are the entries, by recipe bootloader.type.
var layouts = map[string]Layout{
	recipe.BootGrub:    grubLayout{},
	recipe.BootUboot:   ubootLayout{},
	recipe.BootUbootAB: pending{name: recipe.BootUbootAB, state: "boot/uboot.txt", missing: "the FIT partitions and the U-Boot env"},
	recipe.BootRpiAB:   rpiabLayout{},
}

// Names lists the boot loaders that have a layout, sorted.
func Names() []string { return slices.Sorted(maps.Keys(layouts)) }

// Lookup returns the layout of the recipe's boot loader after validating
// the recipe with it.
func Lookup(r *recipe.Recipe) (Layout, error) {
	l, ok := layouts[r.Bootloader.Type]
	if !ok {
		return nil, fmt.Errorf("%w: bootloader.type: %q is not one of %s", recipe.ErrInvalid, r.Bootloader.Type, strings.Join(Names(), ", "))
	}
	if err := l.Validate(r); err != nil {
		return nil, err
	}
	return l, nil
}

// State is the initial boot state on the storage of a recipe: its
// layout's, or for an App Engine target (no boot loader) GRUB's, whose
// grubenv Pantavisor keeps its revisions in there (its
// pantavisor.config says bootloader.type=grub).
func State(r *recipe.Recipe) (map[string][]byte, error) {
	t := r.Bootloader.Type
	if r.InitMode == recipe.ModeAppengine {
		t = recipe.BootGrub
	}
	l, ok := layouts[t]
	if !ok {
		return nil, fmt.Errorf("%w: bootloader.type: %q has no layout", recipe.ErrInvalid, t)
	}
	return l.State()
}

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", recipe.ErrInvalid, key, fmt.Sprintf(format, args...))
}
