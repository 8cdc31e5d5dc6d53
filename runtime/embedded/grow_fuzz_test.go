package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// memDisk is a sparse disk in memory, in chunks of 512 bytes; writes past
// its end fail. It counts writes.
type memDisk struct {
	size   int64
	chunks map[int64][]byte
	writes int
}

func newMemDisk(size int64, prefix []byte) *memDisk {
	m := &memDisk{size: size, chunks: map[int64][]byte{}}
	m.WriteAt(prefix, 0)
	m.writes = 0
	return m
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= m.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off+int64(n) < m.size {
		pos := off + int64(n)
		c := m.chunks[pos/512]
		k := min(len(p)-n, 512-int(pos%512))
		if c == nil {
			clear(p[n : n+k])
		} else {
			copy(p[n:n+k], c[pos%512:])
		}
		n += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.size {
		return 0, errors.New("write past the end")
	}
	m.writes++
	for n := 0; n < len(p); {
		pos := off + int64(n)
		c := m.chunks[pos/512]
		if c == nil {
			c = make([]byte, 512)
			m.chunks[pos/512] = c
		}
		n += copy(c[pos%512:], p[n:])
	}
	return len(p), nil
}

// read returns n bytes at off.
func (m *memDisk) read(off, n int64) []byte {
	b := make([]byte, n)
	m.ReadAt(b, off)
	return b
}

// fuzzDiskSize is the memory disk the fuzzed tables grow into.
const fuzzDiskSize = 4 << 20

// seedTables are the first 34 blocks of small sfdisk images (a 2 MiB disk;
// the storage entry at 1 MiB, 512 KiB long): GPT, then MBR.
func seedTables(f *testing.F) [][]byte {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		return nil
	}
	var out [][]byte
	for _, script := range []string{
		"label: gpt\nstart=40, size=100\nstart=2048, size=1024\n",
		"label: dos\nstart=40, size=100, type=c\nstart=2048, size=1024\n",
	} {
		img := filepath.Join(f.TempDir(), "seed.img")
		os.WriteFile(img, make([]byte, 2<<20), 0o644)
		cmd := exec.Command("sfdisk", "-q", img)
		cmd.Stdin = strings.NewReader(script)
		if err := cmd.Run(); err != nil {
			f.Fatalf("sfdisk: %v", err)
		}
		b, _ := os.ReadFile(img)
		out = append(out, b[:34*512])
	}
	return out
}

// FuzzGrowTable grows partition tables from arbitrary bytes on a memory
// disk: no panic; a failure leaves the disk as it was; a growth ends on a
// MiB, leaves a table that reads back (both GPTs) and a second run that
// does nothing.
func FuzzGrowTable(f *testing.F) {
	for _, s := range seedTables(f) {
		f.Add(s, uint8(2), int64(2048*512), false, true)
		f.Add(s, uint8(1), int64(40*512), false, false)
	}
	f.Add(make([]byte, 512), uint8(1), int64(0), true, false)
	f.Fuzz(func(t *testing.T, table []byte, pno uint8, start int64, big, fixCRC bool) {
		if len(table) > 64<<10 {
			return
		}
		lbs := int64(512)
		if big {
			lbs = 4096
		}
		if fixCRC {
			fixGPTCRCs(table, lbs)
		}
		d := newMemDisk(fuzzDiskSize, table)
		g, err := growTable(d, fuzzDiskSize, lbs, int(pno), start)
		if err != nil || !g.Grew() {
			if d.writes > 0 {
				t.Fatalf("growTable did not grow (%+v, %v) and wrote to the disk", g, err)
			}
			return
		}
		if (start+g.To)%growAlign != 0 || g.To-g.From < growAlign || start+g.To > fuzzDiskSize {
			t.Fatalf("grew %+v from byte %d: not to a MiB boundary within the disk", g, start)
		}
		if mbr := d.read(0, 512); mbr[450] == 0xEE || mbr[466] == 0xEE || mbr[482] == 0xEE || mbr[498] == 0xEE {
			h, ents, err := readGPT(d, lbs)
			if err != nil {
				t.Fatalf("primary GPT after growing: %v", err)
			}
			b, err := parseGPTHeader(d.read(fuzzDiskSize-lbs, lbs))
			if err != nil {
				t.Fatalf("backup GPT after growing: %v", err)
			}
			bents := d.read(int64(b.entriesLBA)*lbs, int64(len(ents)))
			if b.my != h.alt || b.alt != h.my || !bytes.Equal(bents, ents) || b.lastUsable != h.lastUsable {
				t.Fatalf("backup GPT does not mirror the primary")
			}
		}
		d.writes = 0
		if g2, err := growTable(d, fuzzDiskSize, lbs, int(pno), start); err != nil || g2.Grew() || d.writes > 0 {
			t.Fatalf("second growTable = %+v, %v (%d writes)", g2, err, d.writes)
		}
	})
}

// fixGPTCRCs sets the CRCs of a mutated primary GPT, so the fuzzer gets
// past them.
func fixGPTCRCs(b []byte, lbs int64) {
	if int64(len(b)) < 2*lbs || string(b[lbs:lbs+8]) != "EFI PART" {
		return
	}
	h := b[lbs : 2*lbs]
	le := binary.LittleEndian
	at, n := le.Uint64(h[gptEntriesLBA:]), uint64(le.Uint32(h[gptEntries:]))*uint64(le.Uint32(h[gptEntrySize:]))
	if at < uint64(len(b))/uint64(lbs) && at*uint64(lbs)+n <= uint64(len(b)) {
		le.PutUint32(h[gptEntsCRC:], crc32.ChecksumIEEE(b[at*uint64(lbs):][:n]))
	}
	if size := le.Uint32(h[12:]); size >= gptHdrMin && int64(size) <= lbs {
		le.PutUint32(h[gptHdrCRC:], gptHeaderCRC(h[:size]))
	}
}

// FuzzParseGPTHeader: a header that parses is rebuilt byte for byte.
func FuzzParseGPTHeader(f *testing.F) {
	for _, s := range seedTables(f)[:1] {
		f.Add(s[512:1024])
	}
	f.Add([]byte("EFI PART"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseGPTHeader(b)
		if err != nil {
			return
		}
		if got := h.block(h.my, h.alt, h.entriesLBA, h.lastUsable, h.entsCRC); !bytes.Equal(got, b) {
			t.Fatalf("header rebuilt differs")
		}
	})
}

// FuzzParseExt4Size: no panic; a block size within 1-64 KiB.
func FuzzParseExt4Size(f *testing.F) {
	sb := make([]byte, 1024)
	sb[0x38], sb[0x39], sb[0x18], sb[0x60] = 0x53, 0xEF, 2, 0x80
	f.Add(sb)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseExt4Size(b); err == nil && (s.blockSize < 1024 || s.blockSize > 65536) {
			t.Fatalf("block size %d", s.blockSize)
		}
	})
}
