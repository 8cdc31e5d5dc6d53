package ubootbuild

import (
	"debug/elf"
	"fmt"
	"io"
	"os"

	"github.com/pantavisor/pantavisor-go/mkimage/ubootscr"
)

// maxKernel bounds the flat image of a kernel: its load segments must
// fit the RAM of the machines it is for.
const maxKernel = 64 << 20

// LegacyKernel makes a 32-bit ELF kernel (Debian's MIPS vmlinuz, a
// self-decompressing ELF) into a legacy uImage for bootm: its loadable
// segments laid out flat from the lowest address, which is the load
// address, entered at the ELF entry point. The file is read, not
// trusted: segments must be in order, in range and not overlap.
func LegacyKernel(path, name string, arch ubootscr.Arch, epoch int64) ([]byte, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ubootbuild: kernel %s: %w", path, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS32 {
		return nil, fmt.Errorf("ubootbuild: kernel %s: not a 32-bit ELF", path)
	}
	var load, end uint64
	var flat []byte
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		if flat == nil {
			load, end = p.Paddr, p.Paddr
		}
		if p.Paddr < end || p.Paddr+p.Filesz-load > maxKernel {
			return nil, fmt.Errorf("ubootbuild: kernel %s: segment at %#x of %d bytes overlaps or is out of range", path, p.Paddr, p.Filesz)
		}
		flat = append(flat, make([]byte, p.Paddr-end)...)
		b, err := io.ReadAll(io.LimitReader(p.Open(), int64(p.Filesz)))
		if err != nil || uint64(len(b)) != p.Filesz {
			return nil, fmt.Errorf("ubootbuild: kernel %s: segment at %#x: short read (%v)", path, p.Paddr, err)
		}
		flat = append(flat, b...)
		end = p.Paddr + p.Filesz
	}
	if flat == nil {
		return nil, fmt.Errorf("ubootbuild: kernel %s: no loadable segment", path)
	}
	if f.Entry < load || f.Entry >= end {
		return nil, fmt.Errorf("ubootbuild: kernel %s: entry %#x outside its segments", path, f.Entry)
	}
	return ubootscr.MakeKernel(name, flat, arch, uint32(load), uint32(f.Entry), epoch)
}

// LegacyKernelFile is LegacyKernel written to out.
func LegacyKernelFile(path, out, name string, arch ubootscr.Arch, epoch int64) error {
	b, err := LegacyKernel(path, name, arch, epoch)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
