package initrd

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// XZDictCap is the LZMA2 dictionary size of initrd xz streams. The kernel's
// XZ Embedded decoder allocates it while unpacking; 1 MiB is what kernel
// builds use.
const XZDictCap = 1 << 20

// countWriter counts bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteXZ4 writes the tree as a "cpio.xz4": a newc archive compressed as a
// single xz stream with a CRC32 check (the kernel verifies only CRC32 or
// none, never xz's default CRC64), dictionary ≤ 1 MiB, and zero-padded to
// a multiple of 4 bytes so archives can be concatenated.
func WriteXZ4(w io.Writer, t *Tree) error {
	cw := &countWriter{w: w}
	xw, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: XZDictCap}.NewWriter(cw)
	if err != nil {
		return fmt.Errorf("initrd: xz: %w", err)
	}
	if err := WriteCPIO(xw, t); err != nil {
		return err
	}
	if err := xw.Close(); err != nil {
		return fmt.Errorf("initrd: xz: %w", err)
	}
	return pad4(cw)
}

// WriteGzip writes the tree as a gzip-compressed newc archive without name
// or timestamp in the header, padded to 4 bytes.
func WriteGzip(w io.Writer, t *Tree) error {
	cw := &countWriter{w: w}
	gw, err := gzip.NewWriterLevel(cw, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("initrd: gzip: %w", err)
	}
	if err := WriteCPIO(gw, t); err != nil {
		return err
	}
	if err := gw.Close(); err != nil {
		return fmt.Errorf("initrd: gzip: %w", err)
	}
	return pad4(cw)
}

func pad4(cw *countWriter) error {
	if r := cw.n % 4; r != 0 {
		if _, err := cw.Write(make([]byte, 4-r)); err != nil {
			return fmt.Errorf("initrd: pad: %w", err)
		}
	}
	return nil
}
