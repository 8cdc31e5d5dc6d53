// Package initrd assembles initrd file sets and writes them as reproducible
// newc cpio archives, compressed the way the Linux initramfs unpacker reads
// them (xz with a CRC32 check, or gzip).
//
//	t := initrd.NewTree()
//	t.AddDir("/proc", 0o555)
//	t.AddFile("/usr/bin/pantavisor", "out/pantavisor", 0o755)
//	t.AddSymlink("/init", "usr/bin/pantavisor")
//	err := initrd.WriteXZ4(w, t) // newc + xz CRC32, dict 1 MiB, 4-byte padded
//
// Archives are byte-for-byte reproducible: records are sorted by path with
// every parent directory first, mtime/uid/gid are zero, inode numbers are
// assigned in order, and hard links share one inode with the data carried
// by the first record of the group (the kernel links the rest to it).
package initrd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// ErrConflict means two different entries were added at one path.
var ErrConflict = errors.New("conflicting entries")

// Kind is the type of a tree entry.
type Kind int

// Entry kinds.
const (
	KindFile Kind = iota
	KindDir
	KindSymlink
	KindCharDev
	KindBlockDev
)

// Entry is one path of a Tree.
type Entry struct {
	Kind Kind
	Mode uint32 // permission bits
	// Source is a host file for KindFile (read at write time), or "".
	Source string
	// Data is the content for KindFile when Source is "".
	Data []byte
	// Target is the symlink target.
	Target       string
	Major, Minor uint32
	// link groups hard links: entries with the same non-empty link are one
	// inode.
	link string
}

// Tree is an in-memory initrd file set keyed by clean absolute path.
type Tree struct {
	entries map[string]*Entry
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]*Entry{}} }

func clean(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("initrd: %q is not an absolute path", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("initrd: cannot add the root directory")
	}
	return c, nil
}

func (t *Tree) add(p string, e *Entry) error {
	c, err := clean(p)
	if err != nil {
		return err
	}
	if old, ok := t.entries[c]; ok {
		if old.Kind == KindDir && e.Kind == KindDir {
			old.Mode = e.Mode
			return nil
		}
		if old.Kind == e.Kind && old.Source == e.Source && old.Target == e.Target && string(old.Data) == string(e.Data) && old.Mode == e.Mode {
			return nil
		}
		return fmt.Errorf("initrd: %s: %w", c, ErrConflict)
	}
	for d := path.Dir(c); d != "/"; d = path.Dir(d) {
		if old, ok := t.entries[d]; ok && old.Kind != KindDir {
			return fmt.Errorf("initrd: %s: parent %s is not a directory: %w", c, d, ErrConflict)
		}
	}
	t.entries[c] = e
	return nil
}

// AddDir adds a directory.
func (t *Tree) AddDir(p string, mode uint32) error {
	return t.add(p, &Entry{Kind: KindDir, Mode: mode & 0o7777})
}

// AddFile adds a regular file whose content is read from the host file src
// when the archive is written. mode 0 takes the source's permission bits.
func (t *Tree) AddFile(p, src string, mode uint32) error {
	if mode == 0 {
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
		mode = uint32(fi.Mode().Perm())
	}
	return t.add(p, &Entry{Kind: KindFile, Mode: mode & 0o7777, Source: src})
}

// AddData adds a regular file with the given content.
func (t *Tree) AddData(p string, data []byte, mode uint32) error {
	return t.add(p, &Entry{Kind: KindFile, Mode: mode & 0o7777, Data: data})
}

// AddSymlink adds a symbolic link.
func (t *Tree) AddSymlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("initrd: %s: empty symlink target", p)
	}
	return t.add(p, &Entry{Kind: KindSymlink, Mode: 0o777, Target: target})
}

// AddCharDev adds a character device node (e.g. /dev/console 5:1, which the
// kernel needs to give init a console).
func (t *Tree) AddCharDev(p string, mode, major, minor uint32) error {
	return t.add(p, &Entry{Kind: KindCharDev, Mode: mode & 0o7777, Major: major, Minor: minor})
}

// AddHardLink makes p another name of the regular file at existing.
func (t *Tree) AddHardLink(p, existing string) error {
	ce, err := clean(existing)
	if err != nil {
		return err
	}
	e, ok := t.entries[ce]
	if !ok || e.Kind != KindFile {
		return fmt.Errorf("initrd: hard link %s: %s is not a regular file in the tree", p, existing)
	}
	if e.link == "" {
		e.link = ce
	}
	n := *e
	return t.add(p, &n)
}

// Has reports whether p is in the tree.
func (t *Tree) Has(p string) bool {
	c, err := clean(p)
	if err != nil {
		return false
	}
	_, ok := t.entries[c]
	return ok
}

// Get returns the entry at p.
func (t *Tree) Get(p string) (*Entry, bool) {
	c, err := clean(p)
	if err != nil {
		return nil, false
	}
	e, ok := t.entries[c]
	return e, ok
}

// Paths returns every path, implicit parent directories included, sorted so
// that each parent comes before its children.
func (t *Tree) Paths() []string {
	all := map[string]bool{}
	for p := range t.entries {
		all[p] = true
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			all[d] = true
		}
	}
	out := make([]string, 0, len(all))
	for p := range all {
		out = append(out, p)
	}
	// Sorting by path elements puts "a" before "a/b" and keeps siblings in
	// byte order: exactly a parents-first, reproducible order.
	sort.Slice(out, func(i, j int) bool {
		return lessPath(out[i], out[j])
	})
	return out
}

func lessPath(a, b string) bool {
	ea, eb := strings.Split(a[1:], "/"), strings.Split(b[1:], "/")
	for i := 0; i < len(ea) && i < len(eb); i++ {
		if ea[i] != eb[i] {
			return ea[i] < eb[i]
		}
	}
	return len(ea) < len(eb)
}

// Merge adds every entry of o to t.
func (t *Tree) Merge(o *Tree) error {
	for _, p := range o.Paths() {
		e, ok := o.entries[p]
		if !ok {
			continue
		}
		n := *e
		if err := t.add(p, &n); err != nil {
			return err
		}
	}
	return nil
}

// open returns the content of a file entry and its size.
func (e *Entry) open() (io.ReaderAt, int64, error) {
	if e.Source == "" {
		return strings.NewReader(string(e.Data)), int64(len(e.Data)), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, 0, fmt.Errorf("initrd: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("initrd: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("initrd: %s is not a regular file", e.Source)
	}
	return f, fi.Size(), nil
}

// Digest is a SHA-256 over everything that ends up in the archive (paths,
// kinds, modes, link targets, device numbers, hard link groups and file
// contents), so a build can reuse a compressed archive whose inputs did
// not change.
func (t *Tree) Digest() (string, error) {
	h := sha256.New()
	for _, p := range t.Paths() {
		e, ok := t.entries[p]
		if !ok {
			fmt.Fprintf(h, "%s\x00implicit\x00", p)
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%s\x00%d:%d\x00%s\x00", p, e.Kind, e.Mode, e.Target, e.Major, e.Minor, e.link)
		if e.Kind != KindFile {
			continue
		}
		if e.Source == "" {
			fmt.Fprintf(h, "%d\x00", len(e.Data))
			h.Write(e.Data)
			continue
		}
		f, err := os.Open(e.Source)
		if err != nil {
			return "", fmt.Errorf("initrd: %w", err)
		}
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("initrd: %w", err)
		}
		fmt.Fprintf(h, "\x00%d\x00", n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
