package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// TreeDigest is the sha256 of everything MakeExt4 copies from the staged
// tree dir into the file system: every path with its type, permission
// bits, owner, symlink target, extended attributes, hard-link group and
// file contents. Time stamps are left out: MakeExt4 sets all of them to
// its Epoch. Two trees with the same digest give the same file system.
// File contents are hashed in parallel, each inode once.
func TreeDigest(dir string) (string, error) {
	type entry struct {
		line string
		// path of a regular file's first link, and its content sha256
		path, sum string
	}
	var (
		entries []*entry
		files   []*entry
		inode   = map[[2]uint64]string{} // dev, ino → first path (hard links)
	)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("disk: %s: %w", p, err)
		}
		e := &entry{line: fmt.Sprintf("%q mode=%o uid=%d gid=%d", filepath.ToSlash(rel), st.Mode, st.Uid, st.Gid)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("disk: %w", err)
			}
			e.line += fmt.Sprintf(" -> %q", target)
		case unix.S_IFREG:
			id := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := inode[id]; ok {
				e.line += fmt.Sprintf(" link=%q", first)
				break
			}
			inode[id] = filepath.ToSlash(rel)
			e.line += fmt.Sprintf(" size=%d", st.Size)
			e.path = p
			if sum, ok := sums.Load(identity(&st)); ok {
				e.sum = sum.(string)
				break
			}
			files = append(files, e)
		case unix.S_IFCHR, unix.S_IFBLK:
			e.line += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		xa, err := xattrs(p)
		if err != nil {
			return err
		}
		e.line += " " + xa
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := hashFiles(files, func(e *entry) *string { return &e.path }, func(e *entry) *string { return &e.sum }); err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range entries {
		io.WriteString(h, e.line)
		if e.path != "" {
			io.WriteString(h, " sha256="+e.sum)
		}
		io.WriteString(h, "\n")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sums remembers content hashes for the life of the process by file
// identity (device, inode, size, modification and change time): any
// write to, replacement of or metadata change on a file changes its
// identity, so a remembered hash is the hash of the file as it is.
var sums sync.Map // fileIdentity → sha256 hex

type fileIdentity struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func identity(st *unix.Stat_t) fileIdentity {
	return fileIdentity{uint64(st.Dev), uint64(st.Ino), int64(st.Size), st.Mtim.Nano(), st.Ctim.Nano()}
}

// FileSums returns the sha256 (hex) of each file, hashing on all CPUs.
// TreeDigest does not read again a file hashed here that has not
// changed since (same identity).
func FileSums(paths []string) (map[string]string, error) {
	type file struct{ path, sum string }
	files := make([]*file, len(paths))
	for i, p := range paths {
		files[i] = &file{path: p}
	}
	if err := hashFiles(files, func(f *file) *string { return &f.path }, func(f *file) *string { return &f.sum }); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(files))
	for _, f := range files {
		out[f.path] = f.sum
	}
	return out, nil
}

// hashFiles sets the sha256 of each file, on all CPUs, and remembers it
// by the file's identity before it was read (sums); a file that changes
// while it is read is not remembered.
func hashFiles[T any](files []T, path func(T) *string, sum func(T) *string) error {
	work := make(chan T)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range max(1, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				s, err := sha256File(*path(f))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				*sum(f) = s
			}
		}()
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	return first
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("disk: %w", err)
	}
	defer f.Close()
	var before, after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return "", fmt.Errorf("disk: %s: %w", p, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("disk: %s: %w", p, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := unix.Fstat(int(f.Fd()), &after); err == nil && identity(&before) == identity(&after) {
		sums.Store(identity(&after), sum)
	}
	return sum, nil
}

// xattrs lists the extended attributes of p (not followed), sorted, as
// one "xattrs=name=hex;..." field.
func xattrs(p string) (string, error) {
	n, err := unix.Llistxattr(p, nil)
	if err == unix.ENOTSUP || n == 0 {
		return "xattrs=", nil
	}
	if err != nil {
		return "", fmt.Errorf("disk: xattrs of %s: %w", p, err)
	}
	buf := make([]byte, n)
	if n, err = unix.Llistxattr(p, buf); err != nil {
		return "", fmt.Errorf("disk: xattrs of %s: %w", p, err)
	}
	names := splitNul(buf[:n])
	sort.Strings(names)
	out := "xattrs="
	for _, name := range names {
		m, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return "", fmt.Errorf("disk: xattr %s of %s: %w", name, p, err)
		}
		v := make([]byte, m)
		if m, err = unix.Lgetxattr(p, name, v); err != nil {
			return "", fmt.Errorf("disk: xattr %s of %s: %w", name, p, err)
		}
		out += fmt.Sprintf("%q=%x;", name, v[:m])
	}
	return out, nil
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
