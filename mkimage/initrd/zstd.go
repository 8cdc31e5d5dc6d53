package initrd

import (
	"context"
	"fmt"
	"io"
	"os/exec"

	"github.com/klauspost/compress/zstd"
)

// ZstdLevel is the level of the zstd program: 19 is the best without
// --ultra (whose larger windows the kernel must allocate at boot) and
// within 0.3% of --ultra -22 on an initrd.
const ZstdLevel = 19

// ZstdWindow is the window of the Go encoder, the size zstd -19 uses:
// the kernel allocates it while unpacking.
const ZstdWindow = 8 << 20

// ZstdArgs are the zstd program's arguments. -T0 compresses on every CPU;
// zstd's output depends only on the input, the level and its version,
// never on the number of threads. The content checksum (XXH64) is one
// the kernel verifies.
func ZstdArgs() []string {
	return []string{fmt.Sprintf("-%d", ZstdLevel), "-T0", "--check", "-q", "-c"}
}

func zstdEncoder(string) (string, WriteFunc) {
	if p, err := exec.LookPath("zstd"); err == nil {
		return "zstdcli " + fmt.Sprint(ZstdArgs()), func(ctx context.Context, w io.Writer, t *Tree) error {
			return pipe(ctx, w, t, p, ZstdArgs()...)
		}
	}
	return "zstd-go-best", func(_ context.Context, w io.Writer, t *Tree) error { return WriteZstd(w, t) }
}

// WriteZstd writes the tree as a zstd frame with klauspost/compress's
// best level (about 13% larger than zstd -19 on an initrd, several
// times faster), padded to 4 bytes. Its output depends only on the input
// and the library's version.
func WriteZstd(w io.Writer, t *Tree) error {
	cw := &countWriter{w: w}
	zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(ZstdWindow), zstd.WithEncoderCRC(true))
	if err != nil {
		return fmt.Errorf("initrd: zstd: %w", err)
	}
	if err := WriteCPIO(zw, t); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initrd: zstd: %w", err)
	}
	return pad4(cw)
}
