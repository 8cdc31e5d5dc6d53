package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Names inside a trail.
const (
	pvrDir     = ".pvr"
	pvDir      = ".pv"
	stateFile  = ".pvr/json"
	configFile = ".pvr/config"
)

// bootLink is one boot asset linked into .pv/.
type bootLink struct {
	name  string // file name in .pv/
	field string // bsp/run.json field, for errors
	file  string // path relative to bsp/
}

// bootLinks lists the .pv/ boot assets of bsp: pv-kernel.img (linux),
// pv-initrd.img (initrd), pv-initrd.img.<N> (addons from 0), pv-fdt.dtb
// (fdt), pantavisor.fit (fit) and rpiboot.img or rpiboot.img.gz (rpiab).
func bootLinks(b *state.BSP) []bootLink {
	if b == nil {
		return nil
	}
	var out []bootLink
	add := func(name, field, file string) {
		if file != "" {
			out = append(out, bootLink{name, field, file})
		}
	}
	add("pv-kernel.img", "linux", b.Linux)
	add("pv-initrd.img", "initrd", b.Initrd)
	for i, a := range b.Addons {
		add("pv-initrd.img."+strconv.Itoa(i), "addons["+strconv.Itoa(i)+"]", a)
	}
	add("pv-fdt.dtb", "fdt", b.Fdt)
	add("pantavisor.fit", "fit", b.Fit)
	if strings.HasSuffix(b.Rpiab, ".gz") {
		add("rpiboot.img.gz", "rpiab", b.Rpiab)
	} else {
		add("rpiboot.img", "rpiab", b.Rpiab)
	}
	return out
}

// plan is what a trail must contain, checked before anything is written.
type plan struct {
	objects map[string]string // key → sha
	inline  map[string][]byte // key → value bytes
	boot    map[string]string // .pv/<name> → sha
	json    []byte
}

func (s *Storage) plan(st *state.State) (*plan, error) {
	p := &plan{objects: st.Objects(), inline: map[string][]byte{}, boot: map[string]string{}, json: st.Canonical()}
	for k, v := range st.Inline() {
		if k != "#spec" {
			p.inline[k] = v
		}
	}
	keys := make([]string, 0, len(p.objects))
	for k := range p.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sha := p.objects[k]
		if err := state.ValidKey(k); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		if !ValidSha(sha) {
			return nil, fmt.Errorf("key %q: %w %q", k, ErrBadSha, sha)
		}
		if !s.HasObject(sha) {
			return nil, fmt.Errorf("key %q: object %s: %w", k, sha, ErrMissingObject)
		}
	}
	for k := range p.inline {
		if err := state.ValidKey(k); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
	}
	for _, b := range bootLinks(st.BSP()) {
		key := path.Join("bsp", b.file)
		sha, ok := p.objects[key]
		if !ok {
			return nil, fmt.Errorf("bsp/run.json: %s %q: key %q is not an object of the state: %w", b.field, b.file, key, ErrMissingObject)
		}
		p.boot[b.name] = sha
	}
	return p, nil
}

// Materialize builds the trail of revision rev from st (spec §2): every
// object key is hard-linked from objects/<sha> (keys ending in ".bind"
// are copied, as containers may write them), inline values are written
// as files holding the value's JSON, .pvr/json holds the canonical state,
// .pvr/config points at the object store unless one exists, and .pv/
// gets the boot assets named by bsp/run.json. Files already in the
// trail's .pv/ (progress, done, commitmsg, logs) are kept.
//
// The trail is assembled in a temp directory next to it and swapped in
// atomically, so the old trail stays intact when anything fails and a
// crash never leaves a half trail. A trail that already matches st is
// left untouched, so materialising the running revision again is safe.
// A missing object fails with ErrMissingObject naming the key and sha.
func (s *Storage) Materialize(rev string, st *state.State) error {
	if err := ValidRevision(rev); err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	if st == nil {
		return fmt.Errorf("materialize %s: nil state", rev)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.plan(st)
	if err != nil {
		return fmt.Errorf("materialize %s: %w", rev, err)
	}
	dir := s.TrailDir(rev)
	if s.complete(dir, p) {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("materialize %s: %w", rev, err)
	}
	tmp, err := os.MkdirTemp(parent, ".materialize-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("materialize %s: %w", rev, noSpace(err))
	}
	if err := s.build(tmp, dir, p); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("materialize %s: %w", rev, err)
	}
	if err := swapDir(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("materialize %s: %w", rev, err)
	}
	return nil
}

// ReplaceRevision makes rev a fresh revision built from st, keeping
// nothing of the old one (MAKE_FACTORY, spec §2: the old trail, its
// .pv/ files, LogDir/<rev> and disks/rev/<rev> go). The new trail is
// built aside, fsynced, and exchanged with the old one in one rename
// followed by an fsync of trails/, so at every instant, crash or not,
// trails/<rev> is either the old complete revision or the new complete
// one; the old logs and disks are removed only after the swap. Any
// failure before the swap leaves the old revision untouched.
func (s *Storage) ReplaceRevision(rev string, st *state.State) error {
	if err := ValidRevision(rev); err != nil {
		return fmt.Errorf("replace revision: %w", err)
	}
	if st == nil {
		return fmt.Errorf("replace revision %s: nil state", rev)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.plan(st)
	if err != nil {
		return fmt.Errorf("replace revision %s: %w", rev, err)
	}
	dir := s.TrailDir(rev)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("replace revision %s: %w", rev, noSpace(err))
	}
	tmp, err := os.MkdirTemp(parent, ".materialize-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("replace revision %s: %w", rev, noSpace(err))
	}
	if err := s.build(tmp, "", p); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("replace revision %s: %w", rev, err)
	}
	if err := swapDir(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("replace revision %s: %w", rev, err)
	}
	for _, d := range s.revisionTrees(rev)[1:] { // logs and disks of the old one
		if _, err := removeAside(d); err != nil {
			return fmt.Errorf("replace revision %s: %w", rev, err)
		}
	}
	return nil
}

// complete reports whether dir already holds exactly what p describes.
func (s *Storage) complete(dir string, p *plan) bool {
	cur, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil || !bytes.Equal(cur, p.json) {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, configFile)); err != nil {
		return false
	}
	linked := func(rel, sha string) bool {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
		oi, err := os.Stat(s.ObjectPath(sha))
		// A .bind copy may have been changed by its container: it only
		// has to exist.
		return err == nil && (os.SameFile(fi, oi) || strings.HasSuffix(rel, ".bind"))
	}
	for k, sha := range p.objects {
		if !linked(k, sha) {
			return false
		}
	}
	for name, sha := range p.boot {
		if !linked(pvDir+"/"+name, sha) {
			return false
		}
	}
	for k, v := range p.inline {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil || !bytes.Equal(b, v) {
			return false
		}
	}
	return true
}

// build writes the trail described by p into the empty directory tmp,
// carrying over .pvr/config, the .bind copies and the .pv/ files of the
// old trail old ("": none).
func (s *Storage) build(tmp, old string, p *plan) error {
	if old == "" {
		// A path that cannot exist: every carry-over finds nothing.
		old = filepath.Join(tmp, pvDir, "no-old-trail")
	}
	dirs := map[string]bool{tmp: true}
	mkdir := func(d string) error {
		for x := d; !dirs[x]; x = filepath.Dir(x) {
			dirs[x] = true
		}
		return os.MkdirAll(d, 0o755)
	}
	place := func(rel string) (string, error) {
		dst := filepath.Join(tmp, filepath.FromSlash(rel))
		return dst, mkdir(filepath.Dir(dst))
	}
	keys := make([]string, 0, len(p.objects))
	for k := range p.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst, err := place(k)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, noSpace(err))
		}
		if strings.HasSuffix(k, ".bind") {
			// Keep the old trail's copy, which its container may have
			// changed; copy the object only when there is none.
			err = linkFile(filepath.Join(old, filepath.FromSlash(k)), dst)
			if errors.Is(err, fs.ErrNotExist) {
				err = copyFile(s.ObjectPath(p.objects[k]), dst)
			}
		} else {
			err = linkFile(s.ObjectPath(p.objects[k]), dst)
		}
		if err != nil {
			return fmt.Errorf("key %q: object %s: %w", k, p.objects[k], noSpace(err))
		}
	}
	keys = keys[:0]
	for k := range p.inline {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst, err := place(k)
		if err == nil {
			err = writeSynced(dst, p.inline[k])
		}
		if err != nil {
			return fmt.Errorf("key %q: %w", k, noSpace(err))
		}
	}
	dst, err := place(stateFile)
	if err == nil {
		err = writeSynced(dst, p.json)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", stateFile, noSpace(err))
	}
	if err := s.writeConfig(tmp, old); err != nil {
		return err
	}
	if err := mkdir(filepath.Join(tmp, pvDir)); err != nil {
		return noSpace(err)
	}
	if err := carryPv(filepath.Join(old, pvDir), filepath.Join(tmp, pvDir), p.boot); err != nil {
		return err
	}
	for name, sha := range p.boot {
		if err := linkFile(s.ObjectPath(sha), filepath.Join(tmp, pvDir, name)); err != nil {
			return fmt.Errorf("boot asset %s: object %s: %w", name, sha, noSpace(err))
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// writeConfig keeps the old trail's .pvr/config or writes the default one.
func (s *Storage) writeConfig(tmp, old string) error {
	dst := filepath.Join(tmp, configFile)
	err := linkFile(filepath.Join(old, configFile), dst)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep %s: %w", configFile, noSpace(err))
	}
	cfg := []byte(`{"ObjectsDir": "` + jsonEscape(s.objectsDir()) + `"}`)
	if err := writeSynced(dst, cfg); err != nil {
		return fmt.Errorf("write %s: %w", configFile, noSpace(err))
	}
	return nil
}

func jsonEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return r.Replace(s)
}

// carryPv hard-links the entries of the old .pv/ into the new one,
// except the boot assets, which are linked afresh.
func carryPv(oldPv, newPv string, boot map[string]string) error {
	ents, err := os.ReadDir(oldPv)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keep %s: %w", pvDir, err)
	}
	for _, e := range ents {
		if _, ok := boot[e.Name()]; ok || isBootName(e.Name()) {
			continue
		}
		if err := linkTree(filepath.Join(oldPv, e.Name()), filepath.Join(newPv, e.Name())); err != nil {
			return fmt.Errorf("keep %s/%s: %w", pvDir, e.Name(), noSpace(err))
		}
	}
	return nil
}

// isBootName reports whether a .pv/ entry is a boot asset of some BSP.
func isBootName(name string) bool {
	switch name {
	case "pv-kernel.img", "pv-initrd.img", "pv-fdt.dtb", "pantavisor.fit", "rpiboot.img", "rpiboot.img.gz":
		return true
	}
	if rest, ok := strings.CutPrefix(name, "pv-initrd.img."); ok {
		_, err := strconv.Atoi(rest)
		return err == nil
	}
	return false
}

// linkTree recreates src at dst with hard links for files.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			return linkFile(p, target)
		}
	})
}

// linkFile hard-links src at dst, copying when the filesystem cannot link.
func linkFile(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil {
		return nil
	}
	var le *os.LinkError
	if errors.As(err, &le) && (errors.Is(le.Err, syscall.EXDEV) || errors.Is(le.Err, syscall.EPERM) || errors.Is(le.Err, syscall.ENOTSUP)) {
		return copyFile(src, dst)
	}
	return err
}

// copyFile copies src to the new file dst and fsyncs it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, *bp); err != nil {
		return err
	}
	return out.Sync()
}

// writeSynced writes data to the new file path and fsyncs it.
func writeSynced(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// swapDir puts the directory tmp at dst. An existing dst is exchanged
// atomically (renameat2 RENAME_EXCHANGE) and then removed; where the
// filesystem cannot exchange, dst is first renamed aside.
func swapDir(tmp, dst string) error {
	parent := filepath.Dir(dst)
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		return syncDir(parent)
	}
	if err := exchange(tmp, dst); err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		aside := tmp + ".old"
		if err := os.Rename(dst, aside); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Rename(aside, dst)
			return err
		}
		tmp = aside
	}
	if err := syncDir(parent); err != nil {
		return err
	}
	return os.RemoveAll(tmp) // now the old trail
}
