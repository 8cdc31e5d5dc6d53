package disk

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// Region is a byte range written into the image as it is: boot code in
// the MBR, GRUB's core.img in the BIOS boot partition, a U-Boot SPL at
// the offset a SoC's boot ROM reads.
type Region struct {
	// Name says what it is, for errors ("grub boot.img").
	Name string
	// Offset is the byte offset in the image.
	Offset int64
	Data   []byte
}

// ErrOverlap means a region would overwrite a file system, the partition
// table or another region.
var ErrOverlap = errors.New("raw region overlaps")

// PartByName returns the partition with the given name, or nil.
func (l Layout) PartByName(name string) *Placed {
	for i := range l.Parts {
		if l.Parts[i].Name == name {
			return &l.Parts[i]
		}
	}
	return nil
}

// CheckRegions reports a region that lies outside the image, overlaps
// another one, or touches anything but the MBR boot code (bytes 0..439
// and the 0x55aa signature at 510), the gap before the first partition
// (after the GPT) or a partition without a file system (bios-boot, raw).
func (l Layout) CheckRegions(regions []Region) error {
	type span struct {
		name       string
		start, end int64
	}
	// What a region may not touch: the partition table and every file
	// system.
	forbidden := []span{{"the partition table", 440, 510}}
	if l.Table == "gpt" {
		forbidden = append(forbidden, span{"the GPT", 512, 34 * sector}, span{"the backup GPT", l.Size - 33*sector, l.Size})
	}
	for _, p := range l.Parts {
		if p.FS != "none" && p.FS != "" {
			forbidden = append(forbidden, span{"partition " + p.Name, p.Start, p.Start + p.Size})
		}
	}
	var placed []span
	for _, r := range regions {
		s := span{r.Name, r.Offset, r.Offset + int64(len(r.Data))}
		if s.start < 0 || s.end > l.Size {
			return fmt.Errorf("disk: region %s [%d, %d) is outside the %d-byte image", r.Name, s.start, s.end, l.Size)
		}
		for _, f := range slices.Concat(forbidden, placed) {
			if s.start < f.end && f.start < s.end {
				return fmt.Errorf("disk: %w: %s [%d, %d) and %s [%d, %d)", ErrOverlap, r.Name, s.start, s.end, f.name, f.start, f.end)
			}
		}
		placed = append(placed, s)
	}
	return nil
}

// WriteRegions writes the regions into the image after CheckRegions.
func WriteRegions(imgPath string, l Layout, regions []Region) error {
	if err := l.CheckRegions(regions); err != nil {
		return err
	}
	f, err := os.OpenFile(imgPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	for _, r := range regions {
		if _, err := f.WriteAt(r.Data, r.Offset); err != nil {
			f.Close()
			return fmt.Errorf("disk: write %s: %w", r.Name, err)
		}
	}
	return f.Close()
}
