package pvtx

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Errors of package reading, for errors.Is.
var (
	// ErrBadPackage reports input that is not a usable pvtx package.
	ErrBadPackage = errors.New("bad package")
	// ErrBadChecksum reports an object whose content does not match its name.
	ErrBadChecksum = errors.New("object has bad checksum")
	// ErrTooLarge reports a package member over its size limit.
	ErrTooLarge = errors.New("too large")
)

// Limits bounds what a package may contain. Zero fields take the defaults.
type Limits struct {
	// MaxJSON is the largest state JSON accepted (default 32 MiB).
	MaxJSON int64
	// MaxObject is the largest object accepted (default 16 GiB).
	MaxObject int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxJSON <= 0 {
		l.MaxJSON = 32 << 20
	}
	if l.MaxObject <= 0 {
		l.MaxObject = 16 << 30
	}
	return l
}

// ObjectSink receives the objects of a package as they are read. r yields
// exactly size bytes and fails with ErrBadChecksum at its end when the
// content does not hash to sha, so a sink must read r to io.EOF and treat
// any error as "do not keep this object".
type ObjectSink interface {
	PutObject(ctx context.Context, sha string, size int64, r io.Reader) error
}

// ReadPackage reads a pvtx package: a state JSON document, or a tar
// archive (plain, gzip or bzip2, detected by magic bytes) with a "json"
// member and "objects/<sha256>" members, as written by `pvr export`.
// Objects are passed to sink in archive order; the document is returned
// once the whole input was read.
//
// Archive members other than regular files and directories (symlinks, hard
// links, devices, fifos) and names that are absolute or contain ".." are
// rejected, as are object names that are not a sha256, objects whose
// content does not match their name, a missing or repeated json member and
// members over the limits. Other regular files are ignored.
func ReadPackage(ctx context.Context, r io.Reader, sink ObjectSink, lim Limits) (*Doc, error) {
	lim = lim.withDefaults()
	br := bufio.NewReaderSize(r, 1024)
	kind, err := sniff(br)
	if err != nil {
		return nil, err
	}
	var in io.Reader = br
	switch kind {
	case kindGzip:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrBadPackage, err)
		}
		defer gz.Close()
		in = gz
	case kindBzip2:
		in = bzip2.NewReader(br)
	}
	if kind == kindGzip || kind == kindBzip2 {
		inner := bufio.NewReaderSize(in, 1024)
		k, err := sniff(inner)
		if err != nil || (k != kindJSON && k != kindTar) {
			return nil, fmt.Errorf("%w: compressed content is neither JSON nor tar", ErrBadPackage)
		}
		kind, in = k, inner
	}
	var doc *Doc
	if kind == kindJSON {
		doc, err = readJSON(in, lim.MaxJSON)
	} else {
		doc, err = readTar(ctx, in, sink, lim)
	}
	if err != nil {
		return nil, err
	}
	// Read compressed streams to their end so their checksums are verified.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	return doc, nil
}

type kind int

const (
	kindJSON kind = iota
	kindTar
	kindGzip
	kindBzip2
)

// sniff detects the format from the first bytes.
func sniff(br *bufio.Reader) (kind, error) {
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return 0, fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	switch {
	case len(head) == 0:
		return 0, fmt.Errorf("%w: empty input", ErrBadPackage)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return kindGzip, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return kindBzip2, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return kindTar, nil
	}
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return kindJSON, nil
	}
	return 0, fmt.Errorf("%w: unrecognised format (want JSON, tar, tar.gz or tar.bz2)", ErrBadPackage)
}

func readJSON(r io.Reader, max int64) (*Doc, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: json: %w (over %d bytes)", ErrBadPackage, ErrTooLarge, max)
	}
	return ParseDoc(data)
}

// memberName cleans and checks an archive member name. It returns "" for
// the archive root.
func memberName(name string) (string, error) {
	n := name
	for {
		s, ok := strings.CutPrefix(n, "./")
		if !ok {
			break
		}
		n = s
	}
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return "", nil
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%w: member %q: absolute path", ErrBadPackage, name)
	}
	if strings.IndexByte(n, 0) >= 0 || strings.IndexByte(n, '\\') >= 0 {
		return "", fmt.Errorf("%w: member %q: bad character in name", ErrBadPackage, name)
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: member %q: escapes the package", ErrBadPackage, name)
		}
	}
	return path.Clean(n), nil
}

func readTar(ctx context.Context, r io.Reader, sink ObjectSink, lim Limits) (*Doc, error) {
	tr := tar.NewReader(r)
	var doc *Doc
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar: %w", ErrBadPackage, err)
		}
		name, err := memberName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars
		default:
			return nil, fmt.Errorf("%w: member %q: %s not allowed", ErrBadPackage, hdr.Name, typeName(hdr.Typeflag))
		}
		if name == "" {
			return nil, fmt.Errorf("%w: member %q: not a file name", ErrBadPackage, hdr.Name)
		}
		dir, base := path.Split(name)
		switch {
		case name == "json":
			if doc != nil {
				return nil, fmt.Errorf("%w: member %q: duplicate json", ErrBadPackage, hdr.Name)
			}
			if hdr.Size > lim.MaxJSON {
				return nil, fmt.Errorf("%w: member %q: %w (%d bytes, limit %d)", ErrBadPackage, hdr.Name, ErrTooLarge, hdr.Size, lim.MaxJSON)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%w: member %q: %w", ErrBadPackage, hdr.Name, err)
			}
			if doc, err = ParseDoc(data); err != nil {
				return nil, fmt.Errorf("member %q: %w", hdr.Name, err)
			}
		case dir == "objects/":
			if !state.IsSha(base) {
				return nil, fmt.Errorf("%w: member %q: object name is not a sha256", ErrBadPackage, hdr.Name)
			}
			if hdr.Size > lim.MaxObject {
				return nil, fmt.Errorf("%w: member %q: %w (%d bytes, limit %d)", ErrBadPackage, hdr.Name, ErrTooLarge, hdr.Size, lim.MaxObject)
			}
			if err := sink.PutObject(ctx, base, hdr.Size, newVerifier(tr, base, hdr.Size)); err != nil {
				return nil, fmt.Errorf("member %q: %w", hdr.Name, err)
			}
		case strings.HasPrefix(name, "objects/"):
			return nil, fmt.Errorf("%w: member %q: unexpected path below objects/", ErrBadPackage, hdr.Name)
		}
	}
	if doc == nil {
		return nil, fmt.Errorf("%w: archive has no json member", ErrBadPackage)
	}
	return doc, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("member type %q", t)
}

// verifier hashes what is read through it. Once the expected size has
// been read it compares the sha256; on a mismatch it returns
// ErrBadChecksum instead of the last chunk, so a streaming consumer (an
// HTTP upload) never delivers the complete wrong content.
type verifier struct {
	r    io.Reader
	want string
	left int64
	h    hash.Hash
	err  error
}

func newVerifier(r io.Reader, sha string, size int64) *verifier {
	return &verifier{r: r, want: sha, left: size, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.left <= 0 {
		v.err = io.EOF
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.err = fmt.Errorf("%w: content hashes to %s", ErrBadChecksum, got)
		}
		return 0, v.err
	}
	if int64(len(p)) > v.left {
		p = p[:v.left]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.left -= int64(n)
	if v.left == 0 {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.err = fmt.Errorf("%w: content hashes to %s", ErrBadChecksum, got)
			return 0, v.err
		}
		v.err = io.EOF
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		v.err = fmt.Errorf("%w: truncated object (%d bytes missing)", ErrBadPackage, v.left)
		return n, v.err
	}
	if err != nil {
		v.err = fmt.Errorf("%w: %w", ErrBadPackage, err)
		return n, v.err
	}
	return n, nil
}
