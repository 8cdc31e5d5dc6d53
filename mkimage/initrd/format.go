package initrd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// WriteFunc writes a tree as a compressed newc archive, zero-padded to a
// multiple of 4 bytes so archives can be concatenated.
type WriteFunc func(ctx context.Context, w io.Writer, t *Tree) error

// Format is one compression of an initrd or addon archive: every format
// here is one the Linux initramfs unpacker reads (CONFIG_RD_<FORMAT>).
type Format struct {
	// Name is the recipe's [initrd] compression value.
	Name string
	// Ext is the file name suffix of addons: <name>.<Ext>.
	Ext string
	// Magic starts every stream of the format (Detect).
	Magic []byte
	// encoder picks the writer for an architecture's BCJ filter.
	encoder func(bcj string) (kind string, write WriteFunc)
	// decode decompresses one padded stream to at most limit bytes
	// (more is an error).
	decode func(data []byte, limit int64) ([]byte, error)
}

// Formats are the archive compressions; their magics are disjoint.
var Formats = []Format{
	{Name: "xz", Ext: "cpio.xz4", Magic: []byte("\xfd7zXZ\x00"), encoder: xzEncoder, decode: xzDecode},
	{Name: "zstd", Ext: "cpio.zst4", Magic: []byte{0x28, 0xb5, 0x2f, 0xfd}, encoder: zstdEncoder, decode: zstdDecode},
	{Name: "gzip", Ext: "cpio.gz4", Magic: []byte{0x1f, 0x8b}, encoder: goEncoder("gzip", WriteGzip), decode: gzipDecode},
	{Name: "none", Ext: "cpio", Magic: []byte("070701"), encoder: goEncoder("none", WriteCPIO), decode: plainDecode},
}

// Names lists the format names, for recipe validation and messages.
func Names() []string {
	n := make([]string, len(Formats))
	for i, f := range Formats {
		n[i] = f.Name
	}
	return n
}

// Lookup returns the format called name.
func Lookup(name string) (Format, bool) {
	for _, f := range Formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Detect returns the format of an archive from its first bytes.
func Detect(data []byte) (Format, bool) {
	for _, f := range Formats {
		if bytes.HasPrefix(data, f.Magic) {
			return f, true
		}
	}
	return Format{}, false
}

// Encoder returns how this machine writes the format for an architecture
// (bcj: mkimage/arch Arch.BCJ): through the format's program when it is
// installed (xz: several times faster than the Go encoder and smaller;
// zstd: 12% smaller than Go's best level), else in Go. kind names the
// encoder and its settings: the bytes written depend on it (and on the
// program's version), so it belongs in any cache key.
func (f Format) Encoder(bcj string) (kind string, write WriteFunc) {
	return f.encoder(bcj)
}

// Decompress returns the archive inside data, of any format, failing
// when it is larger than limit bytes.
func Decompress(data []byte, limit int64) ([]byte, error) {
	f, ok := Detect(data)
	if !ok {
		return nil, fmt.Errorf("initrd: not a newc cpio archive (plain, %s)", joinNames())
	}
	raw, err := f.decode(data, limit)
	if err != nil {
		return nil, fmt.Errorf("initrd: %s: %w", f.Name, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("initrd: archive larger than %d bytes", limit)
	}
	return raw, nil
}

func joinNames() string {
	var b bytes.Buffer
	for i, n := range Names()[:len(Formats)-1] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}

func goEncoder(name string, w func(io.Writer, *Tree) error) func(string) (string, WriteFunc) {
	return func(string) (string, WriteFunc) {
		return name, func(_ context.Context, out io.Writer, t *Tree) error { return w(out, t) }
	}
}

func xzEncoder(bcj string) (string, WriteFunc) {
	if x := (XZCLI{BCJ: bcj}); x.Available() {
		return "xzcli-" + strings.Join(x.Args(), ""), x.Write
	}
	return goEncoder("xz", WriteXZ4)("")
}

// readLimit reads r up to one byte past limit (Decompress reports it).
func readLimit(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, limit+1))
}

func plainDecode(data []byte, limit int64) ([]byte, error) {
	return data, nil
}

func xzDecode(data []byte, limit int64) ([]byte, error) {
	xr, err := xz.NewReader(bytes.NewReader(data))
	if err == nil {
		var raw []byte
		if raw, err = readLimit(xr, limit); err == nil {
			return raw, nil
		}
	}
	// The Go reader has no BCJ filters, which the xz program writes
	// (XZCLI): let xz read it.
	cmd := exec.Command("xz", "-dc")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, perr := cmd.StdoutPipe()
	if perr != nil {
		return nil, perr
	}
	if perr := cmd.Start(); perr != nil {
		return nil, fmt.Errorf("%w (xz program: %v)", err, perr)
	}
	raw, rerr := readLimit(out, limit)
	io.Copy(io.Discard, out)
	if werr := cmd.Wait(); werr != nil {
		return nil, fmt.Errorf("xz -dc: %w: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return raw, rerr
}

func gzipDecode(data []byte, limit int64) ([]byte, error) {
	gr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	gr.Multistream(false) // the archive is zero-padded to 4 bytes
	return readLimit(gr, limit)
}

// zstdDecode reads the one frame of data. The zero padding after it does
// not parse as a frame: the frame ends where the decoder, given data
// without 3, 2, 1 or 0 of its trailing zeros, checks its content checksum
// and finds nothing after it.
func zstdDecode(data []byte, limit int64) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27),
		zstd.WithDecoderMaxMemory(uint64(limit)+1))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	pad := 0
	for pad < 3 && pad < len(data) && data[len(data)-1-pad] == 0 {
		pad++
	}
	for ; ; pad-- {
		raw, err := d.DecodeAll(data[:len(data)-pad], nil)
		if err == nil || pad == 0 {
			return raw, err
		}
	}
}
