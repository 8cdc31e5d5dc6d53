package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Storage autogrow (upstream pv_e2fsgrow): on the first boot of an image
// written to a larger disk, the storage partition — it must be the last one
// — grows to the end of the disk (GPT or MBR, rewritten here in Go: the
// initrd has no fdisk, sgdisk or resize2fs) and its ext4 file system grows
// online once mounted (EXT4_IOC_RESIZE_FS). Later boots find nothing to do.

// MiB is the unit and the alignment of growth: a partition grows only when
// at least one more MiB fits, and it ends on a MiB boundary.
const growAlign = 1 << 20

// ErrNotLast means the storage partition has another partition after it:
// it is never grown.
var ErrNotLast = errors.New("not the last partition on its disk")

// Growth is a size change, in bytes; From == To when nothing changed.
type Growth struct{ From, To int64 }

// Grew tells whether the size grew.
func (g Growth) Grew() bool { return g.To > g.From }

// AutogrowOff tells whether the kernel command line turns autogrow off
// (pv_autogrow=off, or 0, no, false).
func AutogrowOff(cmdline string) bool {
	off := false
	for _, w := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(w, "="); ok && strings.EqualFold(k, "pv_autogrow") {
			switch strings.ToLower(v) {
			case "off", "0", "no", "false":
				off = true
			default:
				off = false
			}
		}
	}
	return off
}

// Autogrow grows the storage on first boot: Partition before the storage
// is mounted, FileSystem after. Failures are logged as warnings and leave
// the storage as it was: the boot goes on.
//
//	a := &embedded.Autogrow{Dev: "/dev/vda3", Off: embedded.AutogrowOff(cmdline), Log: log}
//	a.Partition()
//	// mount /dev/vda3 on /storage
//	a.FileSystem("/storage")
type Autogrow struct {
	// Dev is the storage partition ("/dev/vda3").
	Dev string
	// Off skips everything (pv_autogrow=off).
	Off bool
	Log *slog.Logger

	part Growth
}

// Partition grows Dev's partition entry to the end of its disk and tells
// the kernel.
func (a *Autogrow) Partition() {
	if a.Off {
		a.Log.Info("storage: autogrow off (pv_autogrow=off)")
		return
	}
	g, err := GrowPartition(a.Dev)
	switch {
	case errors.Is(err, ErrNotLast):
		a.Log.Info("storage: not grown", "dev", a.Dev, "reason", err)
	case err != nil:
		a.Log.Warn("storage: partition not grown", "dev", a.Dev, "err", err)
	}
	a.part = g
}

// FileSystem grows the ext4 file system of Dev, mounted at dir, to fill
// its partition and logs the growth.
func (a *Autogrow) FileSystem(dir string) {
	if a.Off {
		return
	}
	g, err := GrowExt4(a.Dev, dir)
	if err != nil {
		a.Log.Warn("storage: file system not grown", "dev", a.Dev, "err", err)
		if a.part.Grew() {
			a.Log.Info(fmt.Sprintf("storage: grew partition %s from %d MiB to %d MiB", a.Dev, a.part.From>>20, a.part.To>>20))
		}
		return
	}
	if g.Grew() {
		a.Log.Info(fmt.Sprintf("storage: grew %s from %d MiB to %d MiB", a.Dev, g.From>>20, g.To>>20))
	}
}

// sysBlock is where the kernel lists block devices.
const sysBlock = "/sys/class/block"

// partInfo is what sysfs tells of a partition and its disk.
type partInfo struct {
	name, disk string
	// pno is the partition number (1-based, as in vda3).
	pno int
	// start and size of the partition, size of the disk, in bytes.
	start, size, diskSize int64
	// lbs is the disk's logical block size (the LBA unit of the table).
	lbs int64
	ro  bool
}

// readPartInfo looks dev up in sysfs; ok is false for a whole disk.
func readPartInfo(dev string) (p partInfo, ok bool, err error) {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return p, false, err
	}
	p.name = filepath.Base(real)
	sys := filepath.Join(sysBlock, p.name)
	if _, err := os.Stat(filepath.Join(sys, "partition")); err != nil {
		return p, false, nil
	}
	link, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return p, false, err
	}
	p.disk = filepath.Base(filepath.Dir(link))
	dsys := filepath.Join(sysBlock, p.disk)
	var n [6]int64
	for i, f := range []string{
		filepath.Join(sys, "partition"), filepath.Join(sys, "start"), filepath.Join(sys, "size"),
		filepath.Join(dsys, "size"), filepath.Join(dsys, "queue/logical_block_size"), filepath.Join(dsys, "ro"),
	} {
		if n[i], err = readSysInt(f); err != nil {
			return p, false, err
		}
	}
	p.pno, p.start, p.size, p.diskSize, p.lbs, p.ro = int(n[0]), n[1]*512, n[2]*512, n[3]*512, n[4], n[5] != 0
	if p.lbs < 512 || p.lbs > 65536 || p.lbs&(p.lbs-1) != 0 {
		return p, false, fmt.Errorf("%s: logical block size %d", p.disk, p.lbs)
	}
	return p, true, nil
}

func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// GrowPartition grows partition dev to the end of its disk when it is the
// last partition and at least a MiB more fits (the end stays MiB-aligned),
// rewriting the GPT (both headers and entry arrays, the backup moved to the
// disk's end, the protective MBR's size) or the MBR entry, then tells the
// kernel. It never shrinks; a whole disk, or a partition already at the
// end, is left alone (From == To). Growth is in bytes.
func GrowPartition(dev string) (Growth, error) {
	p, ok, err := readPartInfo(dev)
	if err != nil || !ok {
		return Growth{}, err
	}
	g := Growth{From: p.size, To: p.size}
	if p.ro {
		return g, fmt.Errorf("%s is read-only", p.disk)
	}
	f, err := os.OpenFile(filepath.Join("/dev", p.disk), os.O_RDWR, 0)
	if err != nil {
		return g, err
	}
	defer f.Close()
	t, err := growTable(f, p.diskSize, p.lbs, p.pno, p.start)
	if err != nil {
		return g, fmt.Errorf("%s: %w", p.disk, err)
	}
	if err := f.Sync(); err != nil {
		return g, err
	}
	if t.To == p.size {
		return g, nil
	}
	if t.To < p.size {
		return g, fmt.Errorf("%s: table says %d bytes, kernel %d: not shrinking", p.name, t.To, p.size)
	}
	if err := resizePartition(f, p.pno, p.start, t.To); err != nil {
		return g, fmt.Errorf("tell the kernel: %w", err)
	}
	now, err := readSysInt(filepath.Join(sysBlock, p.name, "size"))
	if err != nil {
		return g, err
	}
	if now*512 != t.To {
		return g, fmt.Errorf("%s: kernel sees %d bytes after the resize, want %d", p.name, now*512, t.To)
	}
	g.To = t.To
	return g, nil
}

// GrowExt4 grows the ext4 file system on dev, mounted at dir, online to
// the size of dev (in whole blocks) when at least a MiB more fits.
func GrowExt4(dev, dir string) (Growth, error) {
	f, err := os.Open(dev)
	if err != nil {
		return Growth{}, err
	}
	sb, err := readExt4Size(f)
	f.Close()
	if err != nil {
		return Growth{}, err
	}
	size, err := devSize(dev)
	if err != nil {
		return Growth{}, err
	}
	g := Growth{From: int64(sb.blocks) * sb.blockSize}
	g.To = g.From
	want := uint64(size / sb.blockSize)
	if !sb.is64 && want > 1<<32-1 {
		want = 1<<32 - 1
	}
	if want <= sb.blocks || int64(want-sb.blocks)*sb.blockSize < growAlign {
		return g, nil
	}
	if err := resizeExt4(dir, want); err != nil {
		return g, fmt.Errorf("resize %s to %d blocks: %w", dir, want, err)
	}
	g.To = int64(want) * sb.blockSize
	return g, nil
}

// devSize returns the size of a block device from sysfs (or of a file).
func devSize(dev string) (int64, error) {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return 0, err
	}
	if n, err := readSysInt(filepath.Join(sysBlock, filepath.Base(real), "size")); err == nil {
		return n * 512, nil
	}
	fi, err := os.Stat(real)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// ext4Size is the size of an ext2/3/4 file system from its superblock.
type ext4Size struct {
	blocks    uint64
	blockSize int64
	is64      bool
}

// readExt4Size reads the block count and size from the superblock.
func readExt4Size(r io.ReaderAt) (ext4Size, error) {
	b := make([]byte, 1024)
	if _, err := r.ReadAt(b, sbOffset); err != nil {
		return ext4Size{}, fmt.Errorf("read superblock: %w", err)
	}
	return parseExt4Size(b)
}

// parseExt4Size decodes the 1024-byte superblock.
func parseExt4Size(b []byte) (ext4Size, error) {
	if len(b) < 0x158 || binary.LittleEndian.Uint16(b[sbMagicOff:]) != ext4SuperMag {
		return ext4Size{}, fmt.Errorf("no ext2/3/4 superblock")
	}
	log := binary.LittleEndian.Uint32(b[0x18:])
	if log > 6 { // 1 KiB … 64 KiB blocks
		return ext4Size{}, fmt.Errorf("superblock: block size 2^%d KiB", log)
	}
	s := ext4Size{blockSize: 1024 << log, blocks: uint64(binary.LittleEndian.Uint32(b[0x04:]))}
	if binary.LittleEndian.Uint32(b[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		s.is64 = true
		s.blocks |= uint64(binary.LittleEndian.Uint32(b[0x150:])) << 32
	}
	return s, nil
}

// disk is a block device (or an image file) opened for reading and writing.
type disk interface {
	io.ReaderAt
	io.WriterAt
}

// growTable grows partition pno (1-based, starting at byte start) in the
// partition table of d (size bytes, logical blocks of lbs bytes) to the end
// of the disk. Growth is the partition's size in the table before and
// after, in bytes.
func growTable(d disk, size, lbs int64, pno int, start int64) (Growth, error) {
	mbr := make([]byte, 512)
	if _, err := d.ReadAt(mbr, 0); err != nil {
		return Growth{}, fmt.Errorf("read MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return Growth{}, fmt.Errorf("no partition table")
	}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			return growGPT(d, mbr, size, lbs, pno, start)
		}
	}
	return growMBR(d, mbr, size, lbs, pno, start)
}

// growEnd is the exclusive end, in blocks of lbs, of a partition grown up
// to limit (exclusive, in blocks): aligned down to a MiB.
func growEnd(limit, lbs int64) int64 {
	return limit * lbs / growAlign * growAlign / lbs
}

// MBR partition entries: four of 16 bytes at 446.
const (
	mbrEntries = 446
	mbrEntry   = 16
)

// growMBR grows primary partition pno of an MBR.
func growMBR(d disk, mbr []byte, size, lbs int64, pno int, start int64) (Growth, error) {
	if pno < 1 || pno > 4 {
		return Growth{}, fmt.Errorf("partition %d: only primary MBR partitions are grown", pno)
	}
	e := mbr[mbrEntries+mbrEntry*(pno-1):][:mbrEntry]
	first, n := int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
	if e[4] == 0 || n == 0 {
		return Growth{}, fmt.Errorf("MBR partition %d is empty", pno)
	}
	if first*lbs != start {
		return Growth{}, fmt.Errorf("MBR partition %d starts at block %d, the kernel says byte %d", pno, first, start)
	}
	g := Growth{From: n * lbs, To: n * lbs}
	for i := 0; i < 4; i++ {
		o := mbr[mbrEntries+mbrEntry*i:][:mbrEntry]
		if i != pno-1 && o[4] != 0 && int64(binary.LittleEndian.Uint32(o[8:])) >= first {
			return g, fmt.Errorf("MBR partition %d: %w (partition %d follows)", pno, ErrNotLast, i+1)
		}
	}
	limit := min(size/lbs, 1<<32) // 32-bit LBAs
	end := growEnd(limit, lbs)
	if end-first > 1<<32-1 {
		end = first + 1<<32 - 1
	}
	if end <= first+n || (end-first-n)*lbs < growAlign {
		return g, nil
	}
	binary.LittleEndian.PutUint32(e[12:], uint32(end-first))
	copy(e[5:8], chs(end-1))
	if _, err := d.WriteAt(mbr, 0); err != nil {
		return g, fmt.Errorf("write MBR: %w", err)
	}
	g.To = (end - first) * lbs
	return g, nil
}

// chs encodes a block address as an MBR cylinder/head/sector triple
// (255 heads, 63 sectors; past 1023 cylinders the maximum, as tools do).
func chs(lba int64) []byte {
	c, h, s := lba/(255*63), lba/63%255, lba%63+1
	if c > 1023 {
		c, h, s = 1023, 254, 63
	}
	return []byte{byte(h), byte(s) | byte(c>>2)&0xC0, byte(c)}
}

// gptHeader is a parsed GPT header (UEFI 2.x, 5.3.2).
type gptHeader struct {
	raw                         []byte // the whole header block
	size                        uint32
	my, alt, firstUsable        uint64
	lastUsable, entriesLBA      uint64
	entries, entrySize, entsCRC uint32
}

// GPT header field offsets.
const (
	gptHdrCRC     = 16
	gptMyLBA      = 24
	gptAltLBA     = 32
	gptFirstUse   = 40
	gptLastUse    = 48
	gptEntriesLBA = 72
	gptEntries    = 80
	gptEntrySize  = 84
	gptEntsCRC    = 88
	gptHdrMin     = 92
	// maxGPTEntries bounds the entry array read (the usual is 128×128 B).
	maxGPTEntries = 1 << 20
)

// parseGPTHeader checks and decodes a GPT header block: signature, sizes
// and header CRC.
func parseGPTHeader(b []byte) (gptHeader, error) {
	if len(b) < gptHdrMin || string(b[:8]) != "EFI PART" {
		return gptHeader{}, fmt.Errorf("no GPT header")
	}
	le := binary.LittleEndian
	h := gptHeader{raw: b, size: le.Uint32(b[12:])}
	if h.size < gptHdrMin || int64(h.size) > int64(len(b)) {
		return gptHeader{}, fmt.Errorf("GPT header size %d", h.size)
	}
	if got, want := gptHeaderCRC(b[:h.size]), le.Uint32(b[gptHdrCRC:]); got != want {
		return gptHeader{}, fmt.Errorf("GPT header CRC %08x, want %08x", got, want)
	}
	h.my, h.alt = le.Uint64(b[gptMyLBA:]), le.Uint64(b[gptAltLBA:])
	h.firstUsable, h.lastUsable = le.Uint64(b[gptFirstUse:]), le.Uint64(b[gptLastUse:])
	h.entriesLBA = le.Uint64(b[gptEntriesLBA:])
	h.entries, h.entrySize, h.entsCRC = le.Uint32(b[gptEntries:]), le.Uint32(b[gptEntrySize:]), le.Uint32(b[gptEntsCRC:])
	if h.entrySize < 128 || h.entrySize%8 != 0 || uint64(h.entries)*uint64(h.entrySize) > maxGPTEntries {
		return gptHeader{}, fmt.Errorf("GPT entries %d × %d bytes", h.entries, h.entrySize)
	}
	if h.firstUsable > h.lastUsable {
		return gptHeader{}, fmt.Errorf("GPT usable blocks %d-%d", h.firstUsable, h.lastUsable)
	}
	return h, nil
}

// gptHeaderCRC is the CRC32 of a header with its CRC field zeroed.
func gptHeaderCRC(hdr []byte) uint32 {
	c := crc32.NewIEEE()
	c.Write(hdr[:gptHdrCRC])
	c.Write([]byte{0, 0, 0, 0})
	c.Write(hdr[gptHdrCRC+4:])
	return c.Sum32()
}

// block returns the header as a block at my (the other header at alt, the
// entries at entriesLBA), with lastUsable and the entries' CRC, CRCs set.
func (h gptHeader) block(my, alt, entriesLBA, lastUsable uint64, entsCRC uint32) []byte {
	b := append([]byte(nil), h.raw...)
	le := binary.LittleEndian
	le.PutUint64(b[gptMyLBA:], my)
	le.PutUint64(b[gptAltLBA:], alt)
	le.PutUint64(b[gptLastUse:], lastUsable)
	le.PutUint64(b[gptEntriesLBA:], entriesLBA)
	le.PutUint32(b[gptEntsCRC:], entsCRC)
	le.PutUint32(b[gptHdrCRC:], gptHeaderCRC(b[:h.size]))
	return b
}

// gptEntry returns entry i (0-based) of an entry array: used when its type
// GUID is not zero.
func gptEntry(ents []byte, size uint32, i int) (first, last uint64, used bool) {
	e := ents[uint32(i)*size:][:size]
	for _, c := range e[:16] {
		if c != 0 {
			used = true
			break
		}
	}
	return binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:]), used
}

// readGPT reads and checks the primary GPT header and its entry array.
func readGPT(d io.ReaderAt, lbs int64) (gptHeader, []byte, error) {
	hb := make([]byte, lbs)
	if _, err := d.ReadAt(hb, lbs); err != nil {
		return gptHeader{}, nil, fmt.Errorf("read GPT header: %w", err)
	}
	h, err := parseGPTHeader(hb)
	if err != nil {
		return h, nil, err
	}
	if h.my != 1 {
		return h, nil, fmt.Errorf("primary GPT header says it is at block %d", h.my)
	}
	ents := make([]byte, int(h.entries)*int(h.entrySize))
	if h.entriesLBA > uint64(1<<62/lbs) {
		return h, nil, fmt.Errorf("GPT entries at block %d", h.entriesLBA)
	}
	if _, err := d.ReadAt(ents, int64(h.entriesLBA)*lbs); err != nil {
		return h, nil, fmt.Errorf("read GPT entries: %w", err)
	}
	if got := crc32.ChecksumIEEE(ents); got != h.entsCRC {
		return h, nil, fmt.Errorf("GPT entries CRC %08x, want %08x", got, h.entsCRC)
	}
	return h, ents, nil
}

// growGPT grows entry pno of a GPT: its last block moves to the end of the
// disk (MiB-aligned, before the backup entries), the backup header and
// entries move to the disk's real end, every CRC is recomputed and the
// protective MBR covers the disk again. The new backup is written first,
// then the primary, then the old backup header is cleared.
func growGPT(d disk, mbr []byte, size, lbs int64, pno int, start int64) (Growth, error) {
	h, ents, err := readGPT(d, lbs)
	if err != nil {
		return Growth{}, err
	}
	if pno < 1 || pno > int(h.entries) {
		return Growth{}, fmt.Errorf("GPT has no entry %d", pno)
	}
	first, last, used := gptEntry(ents, h.entrySize, pno-1)
	if !used || last < first {
		return Growth{}, fmt.Errorf("GPT entry %d is empty", pno)
	}
	if first > uint64(1<<62/lbs) || int64(first)*lbs != start {
		return Growth{}, fmt.Errorf("GPT entry %d starts at block %d, the kernel says byte %d", pno, first, start)
	}
	if last-first >= uint64(1<<62/lbs) {
		return Growth{}, fmt.Errorf("GPT entry %d: %d blocks", pno, last-first+1)
	}
	g := Growth{From: int64(last-first+1) * lbs}
	g.To = g.From
	for i := 0; i < int(h.entries); i++ {
		if f, _, u := gptEntry(ents, h.entrySize, i); u && i != pno-1 && f >= first {
			return g, fmt.Errorf("GPT entry %d: %w (entry %d follows)", pno, ErrNotLast, i+1)
		}
	}
	blocks := size / lbs
	entBlocks := (int64(len(ents)) + lbs - 1) / lbs
	altLBA := blocks - 1
	altEnts := altLBA - entBlocks
	lastUsable := altEnts - 1
	if lastUsable < int64(last) {
		return g, nil
	}
	end := growEnd(lastUsable+1, lbs) // exclusive
	if end <= int64(last)+1 || (end-int64(last)-1)*lbs < growAlign {
		return g, nil
	}
	newEnts := append([]byte(nil), ents...)
	binary.LittleEndian.PutUint64(newEnts[uint32(pno-1)*h.entrySize+40:], uint64(end-1))
	crc := crc32.ChecksumIEEE(newEnts)
	backup := h.block(uint64(altLBA), h.my, uint64(altEnts), uint64(lastUsable), crc)
	primary := h.block(h.my, uint64(altLBA), h.entriesLBA, uint64(lastUsable), crc)
	for _, w := range []struct {
		b   []byte
		lba int64
	}{{newEnts, altEnts}, {backup, altLBA}, {newEnts, int64(h.entriesLBA)}, {primary, int64(h.my)}} {
		if _, err := d.WriteAt(w.b, w.lba*lbs); err != nil {
			return g, fmt.Errorf("write GPT at block %d: %w", w.lba, err)
		}
	}
	g.To = (end - int64(first)) * lbs
	if old := int64(h.alt); old != altLBA && old > int64(last) && old < altEnts {
		// the old backup header now lies inside the grown partition; a
		// failure to blank it is harmless (the valid tables are written,
		// and the file system's growth overwrites it)
		_, _ = d.WriteAt(make([]byte, lbs), old*lbs)
	}
	if err := fixProtectiveMBR(d, mbr, blocks); err != nil {
		return g, err
	}
	return g, nil
}

// fixProtectiveMBR makes a protective MBR (a lone 0xEE entry from block 1)
// cover the whole disk again; a hybrid MBR is left alone.
func fixProtectiveMBR(d disk, mbr []byte, blocks int64) error {
	pi := -1
	for i := 0; i < 4; i++ {
		switch e := mbr[mbrEntries+mbrEntry*i:][:mbrEntry]; {
		case e[4] == 0xEE && pi < 0:
			pi = i
		case e[4] != 0:
			return nil
		}
	}
	e := mbr[mbrEntries+mbrEntry*pi:][:mbrEntry]
	if binary.LittleEndian.Uint32(e[8:]) != 1 {
		return nil
	}
	want := uint32(min(blocks-1, 1<<32-1))
	if binary.LittleEndian.Uint32(e[12:]) == want {
		return nil
	}
	binary.LittleEndian.PutUint32(e[12:], want)
	copy(e[5:8], chs(int64(want)))
	if _, err := d.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("write protective MBR: %w", err)
	}
	return nil
}
