package oci

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnsafePath is wrapped by Flatten for a layer entry whose path, or
// hard link target, would leave the root: a ".." component, or a parent
// that resolves through an absolute or escaping symbolic link.
var ErrUnsafePath = errors.New("layer path escapes the root")

// whiteout prefixes of the OCI image layer spec (and Docker's).
const (
	whPrefix = ".wh."
	whOpaque = ".wh..wh..opq"
)

// Layer is one layer's uncompressed tar stream.
type Layer interface {
	Uncompressed() (io.ReadCloser, error)
}

// Flatten applies layers, bottom first, to the directory root, which
// should be empty: the result is the image's root file system with
// owners, modes (setuid included), xattrs, hard links, symbolic links and
// device nodes. Every write happens at a directory opened beneath root
// with RESOLVE_BENEATH and a final component never followed, so no entry
// (nor a symbolic link an earlier entry made) can write outside root.
func Flatten(root string, layers []Layer) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("flatten: open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("flatten: layer %d: %w", i, err)
		}
		err = applyLayer(rfd, tar.NewReader(rc))
		rc.Close()
		if err != nil {
			return fmt.Errorf("flatten: layer %d: %w", i, err)
		}
	}
	return nil
}

// ApplyTar applies one uncompressed layer tar to root (see Flatten).
func ApplyTar(root string, r io.Reader) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("flatten: open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	return applyLayer(rfd, tar.NewReader(r))
}

// cleanPath turns a tar entry name into a clean relative path, refusing
// ".." components and empty names.
func cleanPath(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimLeft(n, "/")
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: %q", ErrUnsafePath, name)
		}
	}
	n = path.Clean(n)
	if n == "." || n == "" {
		return ".", nil
	}
	return n, nil
}

// layerState applies one layer; made records the paths this layer wrote,
// which an opaque marker in the same layer must keep.
type layerState struct {
	root int
	made map[string]bool
}

func applyLayer(rfd int, tr *tar.Reader) error {
	st := &layerState{root: rfd, made: map[string]bool{}}
	// Directory modes are set after the layer, so a read-only directory
	// still takes its entries.
	type dirMode struct {
		p   string
		hdr *tar.Header
	}
	var dirs []dirMode
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		p, err := cleanPath(hdr.Name)
		if err != nil {
			return err
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		if base == whOpaque {
			if err := st.opaque(dir); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			continue
		}
		if strings.HasPrefix(base, whPrefix) {
			if err := st.whiteout(dir, strings.TrimPrefix(base, whPrefix)); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			continue
		}
		if p == "." {
			if hdr.Typeflag == tar.TypeDir {
				dirs = append(dirs, dirMode{p, hdr})
			}
			continue
		}
		if err := st.entry(dir, base, p, hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		st.made[p] = true
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirMode{p, hdr})
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		fd, err := st.openDir(d.p)
		if err != nil {
			return fmt.Errorf("%s: %w", d.hdr.Name, err)
		}
		err = setAttrs(fd, d.hdr)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: %w", d.hdr.Name, err)
		}
	}
	return nil
}

// openBeneath opens the directory rel under the root, following only
// symbolic links that stay beneath it.
func (st *layerState) openBeneath(rel string, flags uint64) (int, error) {
	fd, err := unix.Openat2(st.root, rel, &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("%w: %s resolves outside the root", ErrUnsafePath, rel)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	return fd, nil
}

// parent opens (creating as needed, as Docker does for entries whose
// directory the layer does not list) the directory dir.
func (st *layerState) parent(dir string) (int, error) {
	fd, err := st.openBeneath(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	up, base := path.Split(dir)
	up = strings.TrimSuffix(up, "/")
	if up == "" {
		up = "."
	}
	pfd, err := st.parent(up)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return st.openBeneath(dir, unix.O_PATH|unix.O_DIRECTORY)
}

// openDir opens the real directory p (not a symbolic link to one) for
// fchown/fchmod/fsetxattr.
func (st *layerState) openDir(p string) (int, error) {
	if p == "." {
		return st.openBeneath(".", unix.O_RDONLY|unix.O_DIRECTORY)
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	pfd, err := st.openBeneath(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

// whiteout removes name in dir (a lower layer's file or tree).
func (st *layerState) whiteout(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafePath, name)
	}
	pfd, err := st.openBeneath(dir, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return removeAt(pfd, name)
}

// opaque empties dir of what lower layers put there.
func (st *layerState) opaque(dir string) error {
	fd, err := st.openBeneath(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	dfd, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dfd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if st.made[path.Join(dir, n)] {
			continue
		}
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	return nil
}

// removeAt removes name under the directory fd, recursively, never
// following a symbolic link.
func removeAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	cfd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(cfd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		if err := removeAt(cfd, n); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

// entry creates one non-whiteout entry p (= dir/base).
func (st *layerState) entry(dir, base, p string, hdr *tar.Header, r io.Reader) error {
	pfd, err := st.parent(dir)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	var cur unix.Stat_t
	exists := unix.Fstatat(pfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && cur.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && !(isDir && hdr.Typeflag == tar.TypeDir) {
		if err := removeAt(pfd, base); err != nil {
			return err
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: p, Err: err}
			}
		}
		return nil // attributes after the layer
	case tar.TypeReg, tar.TypeRegA:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "create", Path: p, Err: err}
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		return setAttrs(int(f.Fd()), hdr)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: p, Err: err}
		}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: p, Err: err}
		}
		return nil
	case tar.TypeLink:
		t, err := cleanPath(hdr.Linkname)
		if err != nil || t == "." {
			return fmt.Errorf("%w: hard link to %q", ErrUnsafePath, hdr.Linkname)
		}
		td, tb := path.Split(t)
		td = strings.TrimSuffix(td, "/")
		if td == "" {
			td = "."
		}
		tfd, err := st.openBeneath(td, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(tfd)
		// flags 0: a link to a symbolic link links the link itself.
		if err := unix.Linkat(tfd, tb, pfd, base, 0); err != nil {
			return &os.PathError{Op: "link", Path: p + " => " + t, Err: err}
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: p, Err: err}
		}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: p, Err: err}
		}
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
		return nil
	default:
		// PAX/GNU meta entries are consumed by archive/tar; anything else
		// (sockets, contiguous files) has no place in a root file system.
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// setAttrs sets owner, mode and xattrs on an open file or directory:
// chown first, since it clears setuid and setgid.
func setAttrs(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	return nil
}
