package initrd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// XZCLI compresses through the xz program (XZ Utils), which is several
// times faster than the pure Go encoder and compresses better. BCJ
// selects a branch/call/jump filter for the archive's programs that the
// kernel's initramfs decoder supports (mkimage/arch: Arch.BCJ); the
// dictionary may be larger than XZDictCap because the kernel allocates
// it dynamically when it unpacks an initramfs. The archive is cut into
// independent blocks of XZBlockSize that xz compresses on every CPU
// (the kernel's decoder reads multi-block streams); with a fixed block
// size xz's multi-threaded output depends only on the input and the xz
// version, never on the number of CPUs.
type XZCLI struct {
	// Path of the xz program ("" = "xz" on PATH).
	Path string
	// BCJ is the filter (xz --<BCJ>: "x86", "arm"), "" for none.
	BCJ string
}

// Available reports whether the xz program can be run.
func (x XZCLI) Available() bool {
	_, err := exec.LookPath(x.path())
	return err == nil
}

func (x XZCLI) path() string {
	if x.Path == "" {
		return "xz"
	}
	return x.Path
}

// XZBlockSize is the xz block size of an initrd: a 20 MiB archive makes
// 5-6 blocks, enough for the CPUs of a build machine, and costs ~1.5%
// of compressed size against one block.
const XZBlockSize = "4MiB"

// Args are xz's arguments. -T0 keeps xz in its multi-threaded mode even
// on one CPU (-T1 would pick the single-threaded encoder, whose output
// differs).
func (x XZCLI) Args() []string {
	args := []string{"--format=xz", "--check=crc32", "-T0", "--block-size=" + XZBlockSize, "-c"}
	if x.BCJ != "" {
		args = append(args, "--"+x.BCJ)
	}
	// The dictionary never spans blocks: no larger than one.
	return append(args, "--lzma2=preset=6,dict="+XZBlockSize)
}

// Write writes t as a cpio.xz4 through the xz program.
func (x XZCLI) Write(ctx context.Context, w io.Writer, t *Tree) error {
	return pipe(ctx, w, t, x.path(), x.Args()...)
}

// pipe writes t's archive through a compressor program reading stdin and
// writing stdout, and pads its output to 4 bytes.
func pipe(ctx context.Context, w io.Writer, t *Tree, prog string, args ...string) error {
	cw := &countWriter{w: w}
	cmd := exec.CommandContext(ctx, prog, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = cw, &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("initrd: %s: %w", prog, err)
	}
	werr := WriteCPIO(in, t)
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("initrd: %s: %w: %s", prog, err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return werr
	}
	return pad4(cw)
}
