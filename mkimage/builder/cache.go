package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/sbom"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// writeArchive writes t with the named compression to out, reusing a
// cached archive with the same tree digest: compression dominates the
// initrd stage and its inputs rarely change between builds.
func (b *run) writeArchive(ctx context.Context, stage string, t *initrd.Tree, compression, out string) (cached bool, err error) {
	digest, err := t.Digest()
	if err != nil {
		return false, err
	}
	format, ok := initrd.Lookup(compression)
	if !ok {
		return false, fmt.Errorf("unknown initrd compression %q", compression)
	}
	kind, write := format.Encoder(b.arch.BCJ)
	sum := sha256.Sum256([]byte(kind))
	c := filepath.Join(b.o.Cache, "artifacts", "cpio-"+compression+"-"+hex.EncodeToString(sum[:4])+"-"+digest)
	if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
		return false, err
	}
	if _, err := os.Stat(c); err == nil {
		return true, copyFile(c, out)
	}
	tmp := cacheTemp(c)
	f, err := os.Create(tmp)
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name())
	n, release, err := b.take(ctx, stage)
	if err != nil {
		f.Close()
		return false, err
	}
	err = write(initrd.WithThreads(ctx, n), f, t)
	release()
	if err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, c); err != nil {
		return false, err
	}
	// the SBOM's description of the archive, from the tree (not
	// decompressed again in the sbom stage, at the end of the build)
	var raw bytes.Buffer
	if err := initrd.WriteCPIO(&raw, t); err != nil {
		return false, err
	}
	if err := sbom.DescribeArchive(filepath.Join(b.o.Cache, "artifacts"), c, raw.Bytes()); err != nil {
		return false, err
	}
	return false, copyFile(c, out)
}

// fileID identifies a file the way make and ninja do, and a little more:
// device, inode, size, modification and change time. Rewriting,
// replacing, truncating or touching the file changes it.
type fileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns,omitempty"`
}

// statFile returns the identity of p (symlinks followed).
func statFile(p string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fileID{}, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: int64(st.Size), Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}

// inputID is the identity of an input file that is not ours (a tool, a
// system library, a GRUB module): without its change time, which moves
// whenever a hard link to it is made (the sysroot is hard-linked from
// the package cache on every build).
func inputID(p string) string {
	id, err := statFile(p)
	if err != nil {
		return p + " missing\n"
	}
	return fmt.Sprintf("%s %d:%d:%d:%d\n", p, id.Dev, id.Ino, id.Size, id.Mtime)
}

// libsID identifies the shared libraries the ELF files progs need
// (DT_NEEDED, transitively) as resolved in root ("/" for the host), and
// the same names in extraDirs (a cross toolchain's libc): go's build
// cache tracks the C compiler and the cgo flags but not the libraries a
// cgo program is linked against.
func libsID(root string, progs, extraDirs []string) string {
	var h strings.Builder
	libs, err := initrd.Sysroot{Dir: root}.Needed(progs)
	if err != nil {
		// stable across builds: the initrd stage reports the problem
		fmt.Fprintf(&h, "unresolved: %v\n", err)
	}
	for _, l := range libs {
		h.WriteString(inputID(filepath.Join(root, l)))
		for _, d := range extraDirs {
			if p := filepath.Join(d, filepath.Base(l)); fileExists(p) {
				h.WriteString(inputID(p))
			}
		}
	}
	return h.String()
}

// toolsID identifies host programs (found on PATH) and the shared
// libraries they load: an upgraded e2fsprogs or grub changes it.
func toolsID(names ...string) string {
	var h strings.Builder
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			fmt.Fprintf(&h, "%s not found\n", n)
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		h.WriteString(inputID(p))
		h.WriteString(libsID("/", []string{p}, nil))
	}
	return h.String()
}

// dirID identifies the files of a host directory (not recursive) by
// name and identity: GRUB's platform module directories.
func dirID(dir string) string {
	var h strings.Builder
	ents, err := os.ReadDir(dir)
	if err != nil {
		return dir + " unreadable\n"
	}
	for _, e := range ents {
		h.WriteString(inputID(filepath.Join(dir, e.Name())))
	}
	return h.String()
}

// selfID is the sha256 of the running mkimage program: its code (the
// disk writer, go-diskfs, ...) is an input of every artifact it makes.
var selfID = sync.OnceValue(func() string {
	p, err := os.Executable()
	if err != nil {
		return "unknown executable"
	}
	sum, err := trail.FileSHA(p)
	if err != nil {
		return "unreadable executable " + p
	}
	return sum
})

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// stamp records what a stage's output was made from (Key: a digest of
// every input) and the identity of each output file as the stage left
// it. A stage whose key and outputs still match skips its work.
type stamp struct {
	Key   string            `json:"key"`
	Files map[string]fileID `json:"files"`
}

// readStamp returns the stamp at p (nil when missing or unreadable).
func readStamp(p string) *stamp {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var s stamp
	if json.Unmarshal(data, &s) != nil {
		return nil
	}
	return &s
}

// upToDate reports whether s was made from key and every one of files
// (name → path) is still exactly what s recorded.
func (s *stamp) upToDate(key string, files map[string]string) bool {
	if s == nil || s.Key != key || len(s.Files) != len(files) {
		return false
	}
	for n, p := range files {
		id, err := statFile(p)
		if err != nil || id != s.Files[n] {
			return false
		}
	}
	return true
}

// writeStamp records key and the current identity of files at p.
func writeStamp(p, key string, files map[string]string) error {
	s := stamp{Key: key, Files: map[string]fileID{}}
	for n, f := range files {
		id, err := statFile(f)
		if err != nil {
			return err
		}
		s.Files[n] = id
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := cacheTemp(p)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// cachedDepmod is initrd.Depmod of a kernel's module directory, cached in
// <cache>/artifacts/moddep-<key>: reading the .modinfo of every module
// (~3000 for a distribution kernel) is the bulk of a no-change initrd
// stage. The key is the directory, which must be inside an unpacked
// package of the cache (<cache>/unpacked/<.deb sha256>/, complete, never
// changed afterwards), and this program (selfID: the depmod code). Any
// other directory is read every time. A hit parses the cached
// modules.dep text and reads modules.builtin as Depmod does.
func (b *run) cachedDepmod(moddir string) (*initrd.ModDep, []byte, error) {
	unpacked := filepath.Join(b.o.Cache, "unpacked") + string(filepath.Separator)
	rel, ok := strings.CutPrefix(moddir, unpacked)
	pkgDir, _, _ := strings.Cut(rel, string(filepath.Separator))
	if !ok || !fileExists(filepath.Join(unpacked, pkgDir, ".complete")) {
		return initrd.Depmod(moddir)
	}
	key := sha256.Sum256([]byte("moddep v1\x00" + rel + "\x00" + selfID()))
	c := filepath.Join(b.o.Cache, "artifacts", "moddep-"+hex.EncodeToString(key[:16]))
	if text, err := os.ReadFile(c); err == nil {
		m, err := initrd.ParseModulesDep(bytes.NewReader(text))
		if err == nil {
			if data, err := os.ReadFile(filepath.Join(moddir, "modules.builtin")); err == nil {
				for _, l := range strings.Fields(string(data)) {
					m.Builtin[initrd.ModName(l)] = true
				}
			}
			return m, text, nil
		}
	}
	m, text, err := initrd.Depmod(moddir)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
		return nil, nil, err
	}
	tmp := cacheTemp(c)
	if err := os.WriteFile(tmp, text, 0o644); err != nil {
		return nil, nil, err
	}
	return m, text, os.Rename(tmp, c)
}

// cacheTemp is the temporary a cache entry p is written to before its
// rename: one per process, so that builds of two targets sharing the cache
// (test.docker.sh runs them side by side) never write the same file.
func cacheTemp(p string) string {
	return p + "." + strconv.Itoa(os.Getpid()) + ".tmp"
}
