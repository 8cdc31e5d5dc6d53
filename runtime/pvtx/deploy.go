package pvtx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Deploy writes a local transaction as a revision directory at dir:
// .pvr/json, .pvr/config (kept from the previous dir, else
// {"ObjectsDir": "<objdir>"}), every key as a file (objects hard-linked
// from the object directory, falling back to a copy across file systems;
// other values written as their JSON text) and the .pv/ boot asset links
// named by bsp/run.json.
//
// The tree is built in a temp dir next to dir, synced to disk and swapped
// in (dir → dir.bak, tmp → dir, backup deleted), so dir is never half
// written.
//
// runtime/storage's Materialize works on a storage root (trails/<rev>
// with objects/ beside it); pvtx deploys to any directory from any object
// directory, so it builds the tree itself.
func (t *Tx) Deploy(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: directory", ErrMissingArg)
	}
	s, err := t.activeStatus()
	if err != nil {
		return err
	}
	if !s.Local {
		return ErrRemote
	}
	doc, err := t.loadCurrent()
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("deploy %s: exists and is not a directory", dir)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".pvtx-*")
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if err := t.buildTree(tmp, dir, s.Objdir, doc); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("deploy %s: %w", dir, err)
	}
	if err := syncTree(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("deploy %s: sync: %w", dir, err)
	}
	if err := swapDir(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("deploy %s: %w", dir, err)
	}
	s.State = StateDeployed
	return writeStatus(t.o.Dir, s)
}

func (t *Tx) buildTree(tmp, old, objdir string, doc *Doc) error {
	if err := os.MkdirAll(filepath.Join(tmp, ".pvr"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".pvr", "json"), doc.Bytes(), 0o644); err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(old, ".pvr", "config"))
	if errors.Is(err, fs.ErrNotExist) {
		dirJSON, _ := json.Marshal(objdir)
		cfg, err = []byte(`{"ObjectsDir": `+string(dirJSON)+`}`), nil
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".pvr", "config"), cfg, 0o644); err != nil {
		return err
	}
	buf := make([]byte, t.o.ObjectBufSize)
	for _, e := range doc.entries {
		// Keys under .pv/ and .pvr/ are refused by ParseDoc (state.ValidKey).
		name := filepath.Join(tmp, filepath.FromSlash(e.key))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return fmt.Errorf("%s: %w", e.key, err)
		}
		if sha, ok := objectSha(e.val); ok {
			if err := linkObject(filepath.Join(objdir, sha), name, buf); err != nil {
				return fmt.Errorf("%s: object %s: %w", e.key, sha, err)
			}
			continue
		}
		if err := os.WriteFile(name, e.val, 0o644); err != nil {
			return fmt.Errorf("%s: %w", e.key, err)
		}
	}
	return bootLinks(tmp, doc)
}

// linkObject hard-links (or, across file systems, copies) an object.
func linkObject(obj, name string, buf []byte) error {
	fi, err := os.Stat(obj)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", obj)
	}
	if os.Link(obj, name) == nil {
		return nil
	}
	src, err := os.Open(obj)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(dst, src, buf)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// bootAssets maps bsp/run.json keys to their .pv/ link names, in order of
// preference for each link. "ftd" is accepted because upstream pvtx reads
// that misspelt key; the documented key is "fdt".
var bootAssets = []struct {
	link string
	keys []string
}{
	{"pantavisor.fit", []string{"fit"}},
	{"pv-initrd.img", []string{"initrd", "pantavisor"}},
	{"pv-kernel.img", []string{"linux", "kernel"}},
	{"pv-fdt.dtb", []string{"fdt", "ftd"}},
}

// bootLinks hard-links the boot assets named by bsp/run.json into .pv/.
func bootLinks(tmp string, doc *Doc) error {
	raw, ok := doc.Get("bsp/run.json")
	if !ok {
		return nil
	}
	var run map[string]json.RawMessage
	if err := json.Unmarshal(raw, &run); err != nil {
		return fmt.Errorf("bsp/run.json: %w", err)
	}
	str := func(k string) (string, bool, error) {
		v, ok := run[k]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, fmt.Errorf("bsp/run.json: %s: not a string", k)
		}
		return s, s != "", nil
	}
	links := map[string]string{} // .pv name → bsp file
	for _, a := range bootAssets {
		for _, k := range a.keys {
			v, ok, err := str(k)
			if err != nil {
				return err
			}
			if ok {
				links[a.link] = v
				break
			}
		}
	}
	// rpiab: as runtime/storage names it (not in upstream pvtx).
	if v, ok, err := str("rpiab"); err != nil {
		return err
	} else if ok {
		if strings.HasSuffix(v, ".gz") {
			links["rpiboot.img.gz"] = v
		} else {
			links["rpiboot.img"] = v
		}
	}
	if v, ok := run["addons"]; ok {
		var addons []string
		if err := json.Unmarshal(v, &addons); err != nil {
			return fmt.Errorf("bsp/run.json: addons: not an array of strings")
		}
		for i, a := range addons {
			links["pv-initrd.img."+strconv.Itoa(i)] = a
		}
	}
	if len(links) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(tmp, ".pv"), 0o755); err != nil {
		return err
	}
	for link, file := range links {
		key := "bsp/" + strings.TrimPrefix(file, "/")
		if err := state.ValidKey(key); err != nil {
			return fmt.Errorf("bsp/run.json: %s: %w", link, err)
		}
		if _, ok := doc.Get(key); !ok {
			return fmt.Errorf("bsp/run.json: %s names %s, which is not in the state", link, key)
		}
		if err := os.Link(filepath.Join(tmp, filepath.FromSlash(key)), filepath.Join(tmp, ".pv", link)); err != nil {
			return fmt.Errorf(".pv/%s: %w", link, err)
		}
	}
	return nil
}

// swapDir replaces dir by tmp: dir → dir.bak, tmp → dir, backup removed.
func swapDir(tmp, dir string) error {
	bak := dir + ".bak"
	if err := os.RemoveAll(bak); err != nil {
		return err
	}
	hadOld := true
	if err := os.Rename(dir, bak); errors.Is(err, fs.ErrNotExist) {
		hadOld = false
	} else if err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if hadOld {
			os.Rename(bak, dir)
		}
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if hadOld {
		return os.RemoveAll(bak)
	}
	return nil
}
