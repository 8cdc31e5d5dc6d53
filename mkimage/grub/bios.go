package grub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// InstallBIOS writes GRUB for legacy BIOS into a disk image, like
// grub-bios-setup does for a GPT disk with a BIOS boot partition:
//   - the MBR boot code (bytes 0..439) becomes boot.img, patched with the
//     LBA of core.img and with the boot drive check disabled; the disk
//     signature and (protective) partition table of the image are kept;
//   - core.img is written at coreLBA (the BIOS boot partition), and its
//     first sector's block list is patched to load the remaining sectors.
//
// maxSectors is the size of the BIOS boot partition.
func InstallBIOS(disk io.ReaderAt, w io.WriterAt, bootImg, coreImg []byte, coreLBA, maxSectors uint64) error {
	if len(bootImg) != sectorSize {
		return fmt.Errorf("grub boot.img is %d bytes, want 512", len(bootImg))
	}
	if len(coreImg) < sectorSize {
		return fmt.Errorf("grub core.img is %d bytes, want at least 512", len(coreImg))
	}
	sectors := (uint64(len(coreImg)) + sectorSize - 1) / sectorSize
	if sectors > maxSectors || sectors-1 > 0xffff {
		return fmt.Errorf("%w: %d sectors, room for %d", ErrCoreTooBig, sectors, maxSectors)
	}
	mbr := make([]byte, sectorSize)
	if _, err := disk.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("read mbr: %w", err)
	}
	boot := append([]byte(nil), bootImg...)
	binary.LittleEndian.PutUint64(boot[kernelSectorOff:], coreLBA)
	boot[driveCheckOff], boot[driveCheckOff+1] = 0x90, 0x90
	copy(mbr[:mbrCodeEnd], boot[:mbrCodeEnd])
	mbr[510], mbr[511] = 0x55, 0xaa

	core := make([]byte, sectors*sectorSize)
	copy(core, coreImg)
	binary.LittleEndian.PutUint64(core[blocklistOff:], coreLBA+1)
	binary.LittleEndian.PutUint16(core[blocklistOff+8:], uint16(sectors-1))
	binary.LittleEndian.PutUint16(core[blocklistOff+10:], coreSegment)

	if _, err := w.WriteAt(core, int64(coreLBA*sectorSize)); err != nil {
		return fmt.Errorf("write core.img: %w", err)
	}
	if _, err := w.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("write mbr: %w", err)
	}
	return nil
}
