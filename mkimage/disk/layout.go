// Package disk lays out and writes the flashable image: the partition
// table (go-diskfs GPT or MBR with deterministic identifiers), FAT
// partitions (go-diskfs, reproducible), the ext4 storage partition
// (mkfs.ext4 -d, because trails need hard links) and raw copies.
//
//	l, err := disk.Plan(r)                        // from the recipe
//	err = disk.Create(path, l, seed)              // sparse file + table
//	err = disk.WriteFAT(path, l.Part("esp"), files)
//	err = disk.MakeExt4(ctx, stage, tmp, disk.Ext4Options{...})
//	err = disk.CopyInto(path, l.Part("storage").Start, tmp)
package disk

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// MiB is a mebibyte.
const MiB = 1 << 20

const sector = 512

// ErrTooSmall means the partitions do not fit into the image size.
var ErrTooSmall = errors.New("image too small for its partitions")

// Placed is a recipe partition with its place on the disk.
type Placed struct {
	recipe.Partition
	// Index is the 1-based partition number.
	Index int
	// Start and Size are in bytes.
	Start, Size int64
}

// Layout is the partition layout of an image.
type Layout struct {
	Table string
	Size  int64
	Parts []Placed
}

// Part returns the partition with the given role, or nil.
func (l Layout) Part(role string) *Placed {
	for i := range l.Parts {
		if l.Parts[i].Role == role {
			return &l.Parts[i]
		}
	}
	return nil
}

// Plan places the recipe's partitions: aligned starts, the storage
// partition (size 0) taking the rest, minus room for the backup GPT.
func Plan(r *recipe.Recipe) (Layout, error) {
	align := int64(r.Disk.AlignKiB) * 1024
	l := Layout{Table: r.Disk.Table, Size: int64(r.ImageSizeMiB) * MiB}
	end := l.Size
	if l.Table == "gpt" {
		end -= 33 * sector // backup GPT header and entries
	}
	pos := align // the first unit holds MBR/GPT (and U-Boot loaders)
	for i, p := range r.Disk.Partitions {
		size := int64(p.SizeMiB) * MiB
		if size == 0 {
			size = (end - pos) / align * align
		}
		if size <= 0 || pos+size > end {
			return Layout{}, fmt.Errorf("disk: partition %s: %w (%d MiB image)", p.Name, ErrTooSmall, r.ImageSizeMiB)
		}
		l.Parts = append(l.Parts, Placed{Partition: p, Index: i + 1, Start: pos, Size: size})
		pos = (pos + size + align - 1) / align * align
	}
	return l, nil
}

// GUID derives a stable RFC 4122 (version 4 layout) GUID from a seed and a
// purpose, so the same recipe gives the same disk and partition GUIDs.
func GUID(seed, what string) string {
	h := sha256.Sum256([]byte(seed + "\x00" + what))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
