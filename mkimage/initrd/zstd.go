package initrd

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// ZstdLevel is the level of the zstd program: 19 is the best without
// --ultra (whose larger windows the kernel must allocate at boot) and
// within 0.3% of --ultra -22 on an initrd.
const ZstdLevel = 19

// ZstdWindow is the largest window of an initrd frame (the kernel
// allocates it while unpacking), the Go encoder's and the program's.
const ZstdWindow = 4 << 20

// ZstdArgs are the zstd program's arguments. zstd -19 alone makes one job
// of 4 windows (32 MiB): an initrd would be compressed on one CPU. A 4
// MiB window, 4 MiB jobs on every CPU (-T0) and a 256 KiB overlap (ovlog
// 5: a 16th of the window) between jobs cut the x64-uefi initrd into 6
// jobs of one frame for the same CPU time as one job, 1% larger. zstd's
// output depends only on the input, these settings and its version,
// never on the number of threads. The content checksum (XXH64) is one
// the kernel verifies.
func ZstdArgs() []string {
	return []string{fmt.Sprintf("-%d", ZstdLevel), "-T0", "--zstd=wlog=22,ovlog=5", "-B4MiB", "--check", "-q", "-c"}
}

// WithThreads returns a context under which the zstd program of an
// encoder runs with n compressor threads instead of one per CPU (-T0);
// n < 1 keeps -T0. The output is the same.
func WithThreads(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, threadsKey{}, n)
}

type threadsKey struct{}

func zstdEncoder(string) (string, WriteFunc) {
	if p, err := exec.LookPath("zstd"); err == nil {
		return "zstdcli " + fmt.Sprint(ZstdArgs()), func(ctx context.Context, w io.Writer, t *Tree) error {
			args := ZstdArgs()
			if n, _ := ctx.Value(threadsKey{}).(int); n > 0 {
				args[slices.Index(args, "-T0")] = fmt.Sprintf("-T%d", n)
			}
			return pipe(ctx, w, t, p, args...)
		}
	}
	return "zstd-go-best", func(_ context.Context, w io.Writer, t *Tree) error { return WriteZstd(w, t) }
}

// WriteZstd writes the tree as a zstd frame with klauspost/compress's
// best level (about 12% larger than zstd -19 on an initrd, for a sixth
// of its CPU time), padded to 4 bytes. Its output depends only on the
// input and the library's version.
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
