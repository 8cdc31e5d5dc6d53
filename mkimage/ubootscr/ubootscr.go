// Package ubootscr makes and reads U-Boot legacy script images: the
// boot.scr that U-Boot's distro boot finds on a boot partition and runs
// with "source". It is the bytes `mkimage -T script -C none -O linux`
// writes: a 64-byte big-endian legacy image header (magic 0x27051956,
// header and data CRC32s, type script) followed by a zero-terminated list
// of part lengths (one part) and the script text. Generating it in Go
// keeps u-boot-tools out of the build and the image reproducible (the
// header's time is the caller's epoch, as mkimage does with
// SOURCE_DATE_EPOCH).
//
//	scr, err := ubootscr.Make("pantavisor", script, ubootscr.ArchARM64, epoch)
//	text, h, err := ubootscr.Parse(scr)
package ubootscr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Legacy image constants (U-Boot include/image.h).
const (
	Magic      = 0x27051956
	HeaderSize = 64
	// NameSize is the room for the image name (IH_NMLEN).
	NameSize = 32

	osLinux    = 5 // IH_OS_LINUX: what mkimage -O linux writes
	typeKernel = 2 // IH_TYPE_KERNEL
	typeScript = 6 // IH_TYPE_SCRIPT
	compNone   = 0 // IH_COMP_NONE
)

// Arch is a legacy image architecture code (IH_ARCH_*). U-Boot's source
// command does not check it; mkimage -l prints it.
type Arch uint8

// Architectures of the targets.
const (
	ArchARM    Arch = 2  // IH_ARCH_ARM
	ArchI386   Arch = 3  // IH_ARCH_I386
	ArchMIPS   Arch = 5  // IH_ARCH_MIPS
	ArchMIPS64 Arch = 6  // IH_ARCH_MIPS64
	ArchARM64  Arch = 22 // IH_ARCH_ARM64
	ArchX86_64 Arch = 24 // IH_ARCH_X86_64
	ArchRISCV  Arch = 26 // IH_ARCH_RISCV
)

// debianArch maps Debian architectures to their legacy image code.
var debianArch = map[string]Arch{
	"amd64": ArchX86_64, "i386": ArchI386, "arm64": ArchARM64, "armhf": ArchARM, "armel": ArchARM,
	"mipsel": ArchMIPS, "mips64el": ArchMIPS64, "riscv64": ArchRISCV,
}

// ArchOf returns the legacy image code of a Debian architecture.
func ArchOf(debian string) (Arch, error) {
	a, ok := debianArch[debian]
	if !ok {
		return 0, fmt.Errorf("ubootscr: no U-Boot image architecture for %q", debian)
	}
	return a, nil
}

// Header is the decoded legacy image header of a script.
type Header struct {
	Name string
	// Time is the creation time, seconds since the epoch.
	Time uint32
	Arch Arch
	// Size is the length of the data after the header.
	Size uint32
}

// ErrFormat means the bytes are not a valid legacy script image.
var ErrFormat = errors.New("not a U-Boot legacy script image")

// Make wraps script as a legacy script image named name (at most 31
// bytes: the header keeps a terminating NUL, as mkimage does) created at
// epoch (seconds).
func Make(name string, script []byte, arch Arch, epoch int64) ([]byte, error) {
	if len(name) >= NameSize {
		return nil, fmt.Errorf("ubootscr: name %q longer than %d bytes", name, NameSize-1)
	}
	if len(script) == 0 {
		// U-Boot's source refuses an empty first part.
		return nil, fmt.Errorf("ubootscr: empty script")
	}
	if epoch < 0 || epoch > 0xffffffff || uint64(len(script)) > 0xffffffff-8 {
		return nil, fmt.Errorf("ubootscr: time %d or script size %d out of the header's range", epoch, len(script))
	}
	// Data: the lengths of the parts (one), a zero terminator, the
	// script; the last part is not padded.
	data := make([]byte, 8, 8+len(script))
	binary.BigEndian.PutUint32(data, uint32(len(script)))
	data = append(data, script...)

	b := make([]byte, HeaderSize, HeaderSize+len(data))
	be := binary.BigEndian
	be.PutUint32(b[0:], Magic)
	be.PutUint32(b[8:], uint32(epoch))
	be.PutUint32(b[12:], uint32(len(data)))
	// load address and entry point (16, 20) stay zero
	be.PutUint32(b[24:], crc32.ChecksumIEEE(data))
	b[28], b[29], b[30], b[31] = osLinux, byte(arch), typeScript, compNone
	copy(b[32:], name)
	be.PutUint32(b[4:], crc32.ChecksumIEEE(b[:HeaderSize]))
	return append(b, data...), nil
}

// Name cuts s to the room of a legacy image name.
func Name(s string) string {
	if len(s) >= NameSize {
		return s[:NameSize-1]
	}
	return s
}

// MakeKernel wraps a Linux kernel as an uncompressed legacy kernel image
// (mkimage -T kernel -C none -O linux -a load -e entry) for bootm, which
// copies data to load and jumps to entry: how U-Boot boots a MIPS kernel.
func MakeKernel(name string, data []byte, arch Arch, load, entry uint32, epoch int64) ([]byte, error) {
	if len(name) >= NameSize {
		return nil, fmt.Errorf("ubootscr: name %q longer than %d bytes", name, NameSize-1)
	}
	if len(data) == 0 || uint64(len(data)) > 0xffffffff || epoch < 0 || epoch > 0xffffffff {
		return nil, fmt.Errorf("ubootscr: kernel of %d bytes or time %d out of the header's range", len(data), epoch)
	}
	b := make([]byte, HeaderSize, HeaderSize+len(data))
	be := binary.BigEndian
	be.PutUint32(b[0:], Magic)
	be.PutUint32(b[8:], uint32(epoch))
	be.PutUint32(b[12:], uint32(len(data)))
	be.PutUint32(b[16:], load)
	be.PutUint32(b[20:], entry)
	be.PutUint32(b[24:], crc32.ChecksumIEEE(data))
	b[28], b[29], b[30], b[31] = osLinux, byte(arch), typeKernel, compNone
	copy(b[32:], name)
	be.PutUint32(b[4:], crc32.ChecksumIEEE(b[:HeaderSize]))
	return append(b, data...), nil
}

// Parse checks a legacy script image (magic, type, header and data CRCs,
// sizes) and returns its first part, the script, and its header. It
// reads untrusted bytes: every length is checked before it is used.
func Parse(b []byte) ([]byte, Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return nil, h, fmt.Errorf("%w: %d bytes, shorter than the header", ErrFormat, len(b))
	}
	be := binary.BigEndian
	if m := be.Uint32(b); m != Magic {
		return nil, h, fmt.Errorf("%w: magic %#08x", ErrFormat, m)
	}
	hdr := make([]byte, HeaderSize)
	copy(hdr, b)
	clear(hdr[4:8])
	if got, want := crc32.ChecksumIEEE(hdr), be.Uint32(b[4:]); got != want {
		return nil, h, fmt.Errorf("%w: header CRC %#08x, stored %#08x", ErrFormat, got, want)
	}
	if b[30] != typeScript || b[31] != compNone {
		return nil, h, fmt.Errorf("%w: type %d compression %d, want an uncompressed script", ErrFormat, b[30], b[31])
	}
	h.Time, h.Size, h.Arch = be.Uint32(b[8:]), be.Uint32(b[12:]), Arch(b[29])
	name := b[32:HeaderSize]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	h.Name = string(name)
	if uint64(h.Size) > uint64(len(b)-HeaderSize) {
		return nil, h, fmt.Errorf("%w: data size %d, %d bytes follow the header", ErrFormat, h.Size, len(b)-HeaderSize)
	}
	data := b[HeaderSize : HeaderSize+int(h.Size)]
	if got, want := crc32.ChecksumIEEE(data), be.Uint32(b[24:]); got != want {
		return nil, h, fmt.Errorf("%w: data CRC %#08x, stored %#08x", ErrFormat, got, want)
	}
	// The part lengths: the script's, then more parts or the terminator.
	if len(data) < 8 {
		return nil, h, fmt.Errorf("%w: data of %d bytes has no part list", ErrFormat, len(data))
	}
	n := be.Uint32(data)
	if n == 0 {
		return nil, h, fmt.Errorf("%w: empty script", ErrFormat)
	}
	off := 4
	for be.Uint32(data[off:]) != 0 {
		off += 4
		if off+4 > len(data) {
			return nil, h, fmt.Errorf("%w: unterminated part list", ErrFormat)
		}
	}
	off += 4
	if uint64(n) > uint64(len(data)-off) {
		return nil, h, fmt.Errorf("%w: script of %d bytes, %d bytes of data", ErrFormat, n, len(data)-off)
	}
	return data[off : off+int(n)], h, nil
}
