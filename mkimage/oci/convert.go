package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/squashfs"
)

// Options configure Convert.
type Options struct {
	// Comp is the squashfs compressor (default xz).
	Comp string
	// Epoch stamps the squashfs; 0 takes the image's creation time, so
	// one image digest gives one squashfs.
	Epoch int64
	// Work is where the root is staged (default: beside out).
	Work string
	// Staged, when set, is called with the flattened root before it is
	// packed (to read files such as /etc/passwd with ReadInRoot).
	Staged func(root string) error
}

// Convert flattens the image into a staged root and packs it into the
// squashfs out. out appears only complete: a failure (a registry gone
// mid-layer, a refused layer) leaves no out and no staging directory.
func Convert(ctx context.Context, im *Image, out string, o Options) error {
	work := o.Work
	if work == "" {
		work = filepath.Dir(out)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("convert %s: %w", im.Source, err)
	}
	stage, err := os.MkdirTemp(work, ".oci-root-")
	if err != nil {
		return fmt.Errorf("convert %s: %w", im.Source, err)
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("convert %s: %w", im.Source, err)
	}
	if err := Stage(im, root); err != nil {
		return err
	}
	if o.Staged != nil {
		if err := o.Staged(root); err != nil {
			return fmt.Errorf("convert %s: %w", im.Source, err)
		}
	}
	ep := o.Epoch
	if ep == 0 {
		if cf, err := im.img.ConfigFile(); err == nil && cf.Created.Unix() > 0 {
			ep = cf.Created.Unix()
		}
	}
	tmp := filepath.Join(stage, "root.squashfs")
	if err := squashfs.Make(ctx, root, tmp, squashfs.Options{Comp: o.Comp, Epoch: ep, Owners: true, Xattrs: true, HardLinks: true}); err != nil {
		return fmt.Errorf("convert %s: %w", im.Source, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("convert %s: %w", im.Source, err)
	}
	return nil
}

// Stage flattens the image's layers into the empty directory root.
func Stage(im *Image, root string) error {
	ls, err := im.img.Layers()
	if err != nil {
		return fmt.Errorf("convert %s: layers: %w", im.Source, err)
	}
	layers := make([]Layer, len(ls))
	for i, l := range ls {
		layers[i] = l
	}
	if err := Flatten(root, layers); err != nil {
		return fmt.Errorf("convert %s: %w", im.Source, err)
	}
	return nil
}
