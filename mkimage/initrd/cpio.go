package initrd

import (
	"bufio"
	"fmt"
	"io"

	"github.com/u-root/u-root/pkg/cpio"
)

// Linux st_mode type bits as newc stores them.
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
	modeBlock   = 0o060000
)

// WriteCPIO writes the tree as an uncompressed, reproducible newc archive
// ending in the TRAILER!!! record.
func WriteCPIO(w io.Writer, t *Tree) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rw := cpio.Newc.Writer(bw)
	paths := t.Paths()
	// Hard link groups: count members and remember which inode they share.
	members := map[string]uint64{}
	for _, p := range paths {
		if e, ok := t.entries[p]; ok && e.link != "" {
			members[e.link]++
		}
	}
	groupIno := map[string]uint64{}
	var ino uint64
	for _, p := range paths {
		e, ok := t.entries[p]
		if !ok {
			e = &Entry{Kind: KindDir, Mode: 0o755}
		}
		ino++
		info := cpio.Info{Name: p[1:], Ino: ino, NLink: 1}
		var rec cpio.Record
		switch e.Kind {
		case KindDir:
			info.Mode = modeDir | uint64(e.Mode)
			info.NLink = 2
		case KindSymlink:
			info.Mode = modeSymlink | uint64(e.Mode)
			info.FileSize = uint64(len(e.Target))
			rec.ReaderAt = stringReaderAt(e.Target)
		case KindCharDev, KindBlockDev:
			info.Mode = modeChar | uint64(e.Mode)
			if e.Kind == KindBlockDev {
				info.Mode = modeBlock | uint64(e.Mode)
			}
			info.Rmajor, info.Rminor = uint64(e.Major), uint64(e.Minor)
		case KindFile:
			info.Mode = modeFile | uint64(e.Mode)
			first := true
			if e.link != "" {
				info.NLink = members[e.link]
				if gi, seen := groupIno[e.link]; seen {
					info.Ino = gi
					first = false
				} else {
					groupIno[e.link] = ino
				}
			}
			if first {
				r, size, err := e.open()
				if err != nil {
					return err
				}
				rec.ReaderAt = r
				info.FileSize = uint64(size)
			}
		}
		rec.Info = info
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("initrd: write %s: %w", p, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("initrd: write trailer: %w", err)
	}
	return bw.Flush()
}

type stringReaderAt string

func (s stringReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s)) {
		return 0, io.EOF
	}
	n := copy(p, s[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
