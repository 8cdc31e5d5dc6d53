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
// it dynamically when it unpacks an initramfs. Output depends only on
// the input and the xz version (single-threaded).
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

// Args are xz's arguments.
func (x XZCLI) Args() []string {
	args := []string{"--format=xz", "--check=crc32", "-T1", "-c"}
	if x.BCJ != "" {
		args = append(args, "--"+x.BCJ)
	}
	return append(args, "--lzma2=preset=6,dict=8MiB")
}

// Write writes t as a cpio.xz4 through the xz program.
func (x XZCLI) Write(ctx context.Context, w io.Writer, t *Tree) error {
	cw := &countWriter{w: w}
	cmd := exec.CommandContext(ctx, x.path(), x.Args()...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = cw, &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("initrd: xz: %w", err)
	}
	werr := WriteCPIO(in, t)
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("initrd: xz: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return werr
	}
	return pad4(cw)
}
