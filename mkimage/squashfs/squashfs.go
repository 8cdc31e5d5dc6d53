// Package squashfs makes the BSP volumes (modules.squashfs,
// firmware.squashfs) with mksquashfs, reproducibly: -reproducible,
// -all-root, fixed file system and file times, no hard link detection
// (the input may hold hard links that would make output depend on inode
// order).
//
//	err := squashfs.Make(ctx, "stage/modules", "bsp/modules.squashfs", squashfs.Options{Comp: "xz", Epoch: epoch})
package squashfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Options configure Make.
type Options struct {
	// Comp is the compressor: xz, gzip, lz4 or zstd.
	Comp string
	// Epoch is stamped as file system and file time.
	Epoch int64
	// Owners keeps the files' owners instead of -all-root, and Xattrs
	// their extended attributes (file capabilities): container images
	// carry both.
	Owners, Xattrs bool
	// HardLinks keeps hard links (mksquashfs numbers inodes in its own
	// sorted walk, so the output does not depend on the input's inode
	// numbers; TestConvertReproducible in mkimage/oci checks it).
	HardLinks bool
	// BlockSize is the data block size in bytes (0: mksquashfs's 128
	// KiB, 1 MiB for zstd). Larger blocks pack small files tighter; a
	// read decompresses a whole block.
	BlockSize int
	// Level is the zstd level (0: 19).
	Level int
	// Processors caps mksquashfs's compressor threads (0: one per CPU);
	// -reproducible output does not depend on it.
	Processors int
}

// Make packs dir into the squashfs image out (replacing it).
func Make(ctx context.Context, dir, out string, o Options) error {
	if o.Comp == "" {
		o.Comp = "xz"
	}
	if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("squashfs: %w", err)
	}
	ep := strconv.FormatInt(o.Epoch, 10)
	args := []string{dir, out, "-noappend", "-quiet", "-no-progress", "-reproducible",
		"-comp", o.Comp, "-mkfs-time", ep, "-all-time", ep}
	if !o.HardLinks {
		args = append(args, "-no-hardlinks")
	}
	if !o.Owners {
		args = append(args, "-all-root")
	}
	if !o.Xattrs {
		args = append(args, "-no-xattrs")
	}
	switch o.Comp {
	case "lz4":
		args = append(args, "-Xhc")
	case "zstd":
		// Level 19 in 1 MiB blocks is as small as xz in 128 KiB blocks
		// and its reads cost the device less CPU: each container of
		// x64-uefi starts ~0.2 s sooner under QEMU TCG. Compressing
		// costs about what xz does.
		if o.Level == 0 {
			o.Level = 19
		}
		if o.BlockSize == 0 {
			o.BlockSize = 1 << 20
		}
		args = append(args, "-Xcompression-level", strconv.Itoa(o.Level))
	}
	if o.BlockSize > 0 {
		args = append(args, "-b", strconv.Itoa(o.BlockSize))
	}
	if o.Processors > 0 {
		args = append(args, "-processors", strconv.Itoa(o.Processors))
	}
	cmd := exec.CommandContext(ctx, "mksquashfs", args...)
	// mksquashfs refuses SOURCE_DATE_EPOCH together with -mkfs-time.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out2 bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out2, &out2
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("squashfs: mksquashfs %s: %w: %s", dir, err, strings.TrimSpace(out2.String()))
	}
	return nil
}

// Extract unpacks paths of the squashfs image into the directory dir
// (made when missing; files there are replaced); symbolic links are
// extracted as links, not followed, and paths the image lacks are skipped.
func Extract(ctx context.Context, image, dir string, paths ...string) error {
	args := append([]string{"-d", dir, "-f", "-no-xattrs", "-quiet", "-no-progress", image}, paths...)
	cmd := exec.CommandContext(ctx, "unsquashfs", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("squashfs: unsquashfs %s: %w: %s", image, err, strings.TrimSpace(out.String()))
	}
	return nil
}
