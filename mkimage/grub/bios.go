package grub

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
)

// Offsets inside GRUB's i386-pc boot.img (grub/include/grub/i386/pc/boot.h)
// and diskboot.img (the first sector of core.img).
const (
	sectorSize = 512
	// kernelSectorOff holds the 64-bit LBA of core.img's first sector.
	kernelSectorOff = 0x5c
	// driveCheckOff is a 2-byte jump that skips the "trust the BIOS boot
	// drive" workaround; grub-bios-setup NOPs it for hard disks.
	driveCheckOff = 0x66
	// mbrCodeEnd: bytes 440.. hold the disk signature and partition table.
	mbrCodeEnd = 440
	// blocklistOff is diskboot.img's first block list entry: start LBA
	// (8 bytes), sector count (2), load segment (2).
	blocklistOff = sectorSize - 12
	// coreSegment is where diskboot.img loads the rest of core.img.
	coreSegment = 0x820
)

// ErrCoreTooBig means core.img does not fit where it has to go.
var ErrCoreTooBig = errors.New("grub core.img too big")

// BIOSRegions are the raw regions that install GRUB for legacy BIOS into
// a disk image, like grub-bios-setup does for a GPT disk with a BIOS boot
// partition:
//   - the MBR boot code (bytes 0..439) becomes boot.img, patched with the
//     LBA of core.img and with the boot drive check disabled; the disk
//     signature and (protective) partition table of the image are not
//     touched, the boot signature 0x55aa is set;
//   - core.img goes to coreLBA (the BIOS boot partition), its first
//     sector's block list patched to load the remaining sectors.
//
// maxSectors is the size of the BIOS boot partition.
func BIOSRegions(bootImg, coreImg []byte, coreLBA, maxSectors uint64) ([]disk.Region, error) {
	if len(bootImg) != sectorSize {
		return nil, fmt.Errorf("grub boot.img is %d bytes, want 512", len(bootImg))
	}
	if len(coreImg) < sectorSize {
		return nil, fmt.Errorf("grub core.img is %d bytes, want at least 512", len(coreImg))
	}
	sectors := (uint64(len(coreImg)) + sectorSize - 1) / sectorSize
	if sectors > maxSectors || sectors-1 > 0xffff {
		return nil, fmt.Errorf("%w: %d sectors, room for %d", ErrCoreTooBig, sectors, maxSectors)
	}
	boot := append([]byte(nil), bootImg[:mbrCodeEnd]...)
	binary.LittleEndian.PutUint64(boot[kernelSectorOff:], coreLBA)
	boot[driveCheckOff], boot[driveCheckOff+1] = 0x90, 0x90

	core := make([]byte, sectors*sectorSize)
	copy(core, coreImg)
	binary.LittleEndian.PutUint64(core[blocklistOff:], coreLBA+1)
	binary.LittleEndian.PutUint16(core[blocklistOff+8:], uint16(sectors-1))
	binary.LittleEndian.PutUint16(core[blocklistOff+10:], coreSegment)

	return []disk.Region{
		{Name: "grub boot.img", Offset: 0, Data: boot},
		{Name: "boot signature", Offset: 510, Data: []byte{0x55, 0xaa}},
		{Name: "grub core.img", Offset: int64(coreLBA * sectorSize), Data: core},
	}, nil
}
